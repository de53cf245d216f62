"""Pier in five minutes, from Python.

Run it from the repository after building the library (scripts/build-lib):

    python3 examples/python/quickstart.py

or after `pip install ./bindings/python`, from anywhere (set PIER_LIBRARY to the path of
libpier.so.0 if it is not on the system library path).
"""

import os
import sys
import tempfile

try:
    import pier
except ImportError:  # running from a checkout without installing the binding
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python", "src"))
    import pier


def main() -> None:
    folder = tempfile.mkdtemp(prefix="pier-quickstart-")
    path = os.path.join(folder, "field.pier")

    # Open (or create) a local store. `with` closes it at the end.
    with pier.Database(path) as db:
        # Records are JSON objects in collections; ids that sort by creation time are free.
        ada = pier.new_id()
        db.put("customers", ada, {"name": "Ada", "city": "London", "vip": True})
        db.put("customers", pier.new_id(), {"name": "Grace", "city": "New York"})

        # Read it back.
        print("get:  ", db.get("customers", ada))

        # Change some fields with a JSON merge patch: null removes a field.
        db.patch("customers", ada, {"city": "Paris", "vip": None})
        print("patch:", db.get("customers", ada))

        # Query with SQL over the `records` view; bind values with ?1, ?2 ...
        rows = db.query(
            "SELECT id, json_extract(body, '$.name') AS name FROM records "
            "WHERE collection = ?1 AND json_extract(body, '$.city') = ?2",
            ["customers", "Paris"],
        )
        print("query:", rows)

        # Every write is tracked for sync until a server acknowledges it.
        print("state:", db.state("customers", ada), "| pending:", db.info()["pending"])

        # A missing record is a NotFoundError, which is also a KeyError.
        try:
            db.get("customers", "nobody")
        except KeyError as error:
            print("error:", error)

    print("store written to", path)


if __name__ == "__main__":
    main()

"""Two technicians, one customer, no network: a sync server settles it, from Python.

Run it from the repository after building the library (scripts/build-lib):

    python3 examples/python/sync_demo.py

A server with a master store, two devices with their own local stores, and a conflict:
both technicians change the same customer's phone number offline. The "customers"
collection is "manual", so the second one to sync gets a conflict to resolve; "orders"
follow a business rule written in Python ("cancelled beats completed").
"""

import os
import sys
import tempfile
import time

try:
    import pier
except ImportError:  # running from a checkout without installing the binding
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python", "src"))
    import pier


def cancelled_beats_completed(change: pier.ResolverInput) -> object:
    """The server's rule for orders changed on two devices at once."""
    if (change.server_body or {}).get("status") == "cancelled":
        return pier.KEEP_SERVER
    if (change.client_body or {}).get("status") == "cancelled":
        return change.client_body
    return pier.MANUAL


def main() -> None:
    folder = tempfile.mkdtemp(prefix="pier-sync-demo-")
    config = {"collections": {"customers": {"policy": "manual"}, "orders": {"policy": "custom"}}}

    with pier.Server(os.path.join(folder, "master.pier"), config) as server, \
            pier.Database(os.path.join(folder, "anna.pier")) as anna, \
            pier.Database(os.path.join(folder, "ben.pier")) as ben:
        server.set_resolver("orders", cancelled_beats_completed)

        # Ben's device talks to the server through a "host transport": any function that
        # sends the request bytes and returns the response bytes (an HTTP POST in an app).
        ben_identity = pier.Identity("ben")

        def ben_link(request: bytes) -> bytes:
            return server.handle(request, ben_identity)

        # The office creates a customer and an order; both devices sync and go offline.
        anna.put("customers", "c1", {"name": "Ada Lovelace", "phone": "100"})
        anna.put("orders", "o1", {"customer": "c1", "status": "open"})
        anna.sync(server, identity=pier.Identity("anna"))
        ben.sync(transport=ben_link)
        print("both devices have:", ben.get("customers", "c1"), ben.get("orders", "o1"))

        # Offline: both change the phone; Anna completes the order, then Ben cancels it.
        anna.patch("customers", "c1", {"phone": "200 (Anna)"})
        anna.patch("orders", "o1", {"status": "completed"})
        time.sleep(0.01)
        ben.patch("customers", "c1", {"phone": "300 (Ben)"})
        ben.patch("orders", "o1", {"status": "cancelled"})

        # Back online. Anna syncs first, so her edits apply; Ben's phone edit conflicts.
        report = anna.sync(server, identity=pier.Identity("anna"))
        print(f"anna: pushed {report.pushed}, applied {report.applied}")
        report = ben.sync(transport=ben_link, progress=lambda p: print(f"  ben: round trip {p.round_trips}, {p.pending} pending"))
        print(f"ben:  pushed {report.pushed}, applied {report.applied}, conflicts {report.conflicts}")

        # The conflict blocks Ben's next sync until he decides.
        try:
            ben.sync(transport=ben_link)
        except pier.ConflictError as error:
            print("ben's sync is blocked:", error)
        for conflict in ben.conflicts():
            print(f"conflict on {conflict.collection}/{conflict.id}: mine {conflict.local_body['phone']!r}, "
                  f"server {conflict.server_body['phone']!r}, base {conflict.base_body['phone']!r}")
            merged = dict(conflict.server_body, phone="300 (Ben), 200 (Anna)")
            ben.resolve(conflict, merged)  # or pier.KEEP_LOCAL / pier.KEEP_SERVER

        ben.sync(transport=ben_link)
        anna.sync(server, identity=pier.Identity("anna"))
        print("anna sees:", anna.get("customers", "c1"), anna.get("orders", "o1"))
        print("ben sees: ", ben.get("customers", "c1"), ben.get("orders", "o1"))

        # The server logged every change it processed, with its outcome.
        print("business log:")
        for entry in server.log():
            print(f"  #{entry['seq']} {entry['user']:<5} {entry['collection']}/{entry['record_id']} "
                  f"{entry['op']} -> {entry['outcome']} {entry['detail']}")

    print("stores written to", folder)


if __name__ == "__main__":
    main()

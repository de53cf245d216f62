"""benchmarks/run: Pier side by side with the alternatives a user would pick (issue 8).

Every figure is measured in this run on this machine, and every headline is a ratio
against a baseline measured in the same process or script on the same rows. The results
go to a JSON file; the report (RESULTS.md with PNG plots) is rendered from it, so
``--report-only`` can redraw it without measuring again.

Sections (``--only`` / ``--skip`` take these names):
  writes     local writes with change tracking: raw SQLite, the session extension, Pier
             (C, bench_local.c), and the same from Python (apsw against Pier's binding)
  apply      applying downloaded changes: raw insert, sqlite3changeset_apply, Pier
  http       initial and delta sync over loopback HTTP against the full-refetch pattern,
             bytes on the wire, peak memory, for every dataset size
  crypto     encryption at rest against plain, beside SQLite3MC and SQLCipher
  load       server throughput with 8 and 32 clients against the raw insert rate, both stores
  published  figures published by peers that cannot run here (benchmarks/peers/published.json)

This script is started by ``benchmarks/run``, which builds the binaries and the Python
environments and passes their paths; run that, not this.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "reliability"))
from common import API_KEY, Serve, free_port  # noqa: E402  (the harness's `pier serve` runner)

SECTIONS = ["writes", "apply", "http", "crypto", "load", "published"]
#: The section each kind of figure belongs to (the Python halves go with their C halves).
SECTION_OF = {"writes-python": "writes", "apply-python": "writes"}


def section_of(figure: Dict[str, Any]) -> str:
    return SECTION_OF.get(figure["section"], figure["section"])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def json_lines(text: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run(command: List[str], **kwargs: Any) -> str:
    """Runs a measuring program; its JSON lines are on stdout, its chatter on stderr. No
    step of the full suite takes an hour; one that does is hung."""
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=3600, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def stop_process(process: "subprocess.Popen[str]") -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Plan:
    """The sizes of one run: the full suite, or the smoke run of the test command."""

    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke
        if smoke:
            self.write_sizes, self.singles, self.write_rounds = [500], 100, 1
            self.python_size = 500
            self.sizes = [300, 1_000]
            self.crypto = ["--records", "300", "--single-writes", "30", "--reads", "300", "--rounds", "1"]
            self.load = ["--clients", "2", "--syncs", "2", "--batch", "10"]
            self.delta_rounds = 2
        else:
            self.write_sizes, self.singles, self.write_rounds = [100_000, 1_000_000], 10_000, 3
            self.python_size = 100_000
            self.sizes = [10_000, 30_000, 100_000, 300_000, 1_000_000]
            self.crypto = ["--records", "20000", "--single-writes", "1000", "--reads", "20000", "--rounds", "5"]
            self.load = ["--clients", "8,32", "--syncs", "20", "--batch", "50"]
            self.delta_rounds = 3

    def rounds(self, size: int) -> int:
        """Best-of rounds: three where a round is cheap, one for the largest datasets."""
        if self.smoke:
            return 1
        return 3 if size <= 100_000 else 1


# ---- measuring ------------------------------------------------------------------------


class Runner:
    def __init__(self, args: argparse.Namespace, plan: Plan, scratch: Path) -> None:
        self.args = args
        self.plan = plan
        self.scratch = scratch

    def writes(self) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for size in self.plan.write_sizes:
            rounds = self.plan.write_rounds if size <= 100_000 else 1
            log(f"writes: {size:,} bulk + {self.plan.singles:,} single-record transactions, best of {rounds} (C)")
            out += json_lines(run([self.args.bench_local, "writes", str(size), str(self.plan.singles), str(rounds), str(self.scratch)]))
        log(f"writes and apply from Python: apsw with the session extension, {self.plan.python_size:,} records")
        out += json_lines(run([self.args.apsw_python, str(HERE / "apsw_session.py"), str(self.plan.python_size),
                               str(self.plan.write_rounds), str(self.scratch)]))
        return out

    def seed(self, size: int) -> Path:
        master = self.scratch / f"master-{size}.pier"
        remove_db(master)
        run([self.args.bench_sync, "seed", str(size), str(master)])
        return master

    def apply(self, size: int, master: Path) -> List[Dict[str, Any]]:
        log(f"apply: {size:,} downloaded records, best of {self.plan.rounds(size)}")
        return json_lines(run([self.args.bench_local, "apply", str(master), str(self.plan.rounds(size)), str(self.scratch)]))

    def http(self, size: int, master: Path) -> List[Dict[str, Any]]:
        """Initial sync, then delta syncs of 10 changed records, Pier and full refetch."""
        out: List[Dict[str, Any]] = []
        baseline = self.scratch / f"refetch-server-{size}.db"
        baseline.unlink(missing_ok=True)
        db = sqlite3.connect(baseline)
        db.executescript("PRAGMA journal_mode=WAL; CREATE TABLE records(id TEXT PRIMARY KEY, body TEXT NOT NULL);")
        db.execute("ATTACH ? AS master", (str(master),))
        db.execute("INSERT INTO records SELECT id, body FROM master.records WHERE deleted = 0 ORDER BY version")
        db.commit()
        db.execute("DETACH master")
        changed_ids = [row[0] for row in db.execute("SELECT id FROM records ORDER BY id LIMIT 10 OFFSET ?", (size // 2,))]
        db.close()

        import pier  # the binding (loads libpier): only the measuring sections need it

        with contextlib.ExitStack() as stack:
            serve = Serve(self.scratch / f"serve-{size}", str(master))
            stack.callback(serve.stop)
            serve.start()
            # The same master store behind a server without the pull prefetch, where client
            # and server take turns: what the prefetch changes, measured in the same run.
            turns = Serve(self.scratch / f"serve-turns-{size}", str(master), config={"pull_prefetch_threads": 0})
            stack.callback(turns.stop)
            turns.start()
            port = free_port()
            refetch_log = stack.enter_context(open(self.scratch / "refetch-server.log", "ab"))
            refetch = subprocess.Popen([sys.executable, str(HERE / "refetch.py"), "serve", str(baseline), str(port)],
                                       stdout=subprocess.PIPE, stderr=refetch_log, text=True)
            stack.callback(stop_process, refetch)
            assert refetch.stdout is not None
            line = refetch.stdout.readline()
            if not line.startswith("refetch: listening"):
                raise RuntimeError(f"the refetch server did not start: {line!r}")
            refetch_url = f"http://127.0.0.1:{port}"
            pier_client = self.scratch / f"client-{size}.pier"
            refetch_client = self.scratch / f"client-{size}.db"

            def pier_sync(server: Serve = serve) -> Dict[str, Any]:
                # bench_local reports the CPU time of its pier_sync call (client_cpu_s); the
                # server's is read from /proc around it, and the pages the server prepared
                # ahead from its /metrics: together they say where the time goes.
                assert server.process is not None
                server_before = process_cpu_seconds(server.process.pid)
                hits_before = prefetch_hits(server.url)
                figure = json_lines(run([self.args.bench_local, "http-sync", server.url, API_KEY, str(pier_client)]))[0]
                figure["server_cpu_s"] = round(process_cpu_seconds(server.process.pid) - server_before, 3)
                figure["prefetch_hits"] = prefetch_hits(server.url) - hits_before
                return figure

            def full_refetch() -> Dict[str, Any]:
                return json_lines(run([sys.executable, str(HERE / "refetch.py"), "fetch", refetch_url, str(refetch_client)]))[0]

            rounds = self.plan.rounds(size)
            log(f"http: initial sync of {size:,} records over loopback HTTP, best of {rounds}")
            for _ in range(rounds):
                for path in (pier_client, refetch_client):
                    remove_db(path)
                p = pier_sync()
                remove_db(pier_client)
                t = pier_sync(turns)
                r = full_refetch()
                if p["records_after"] != size or t["records_after"] != size or r["records_after"] != size:
                    raise RuntimeError(f"initial sync incomplete: pier {p['records_after']}, prefetch off {t['records_after']}, "
                                       f"refetch {r['records_after']} of {size}")
                out.append(dict(p, section="http", kind="initial", side="pier", records=size))
                out.append(dict(t, section="http", kind="initial", side="pier-turns", records=size))
                out.append(dict(r, section="http", kind="initial", side="refetch", records=size))

            # The client now holds everything (its last sync went through `turns`, on the same
            # master store); the delta rounds go through `serve`.
            turns.stop()
            log(f"http: delta sync of 10 changed records on {size:,}, {self.plan.delta_rounds} rounds")
            writer = pier.Database(str(self.scratch / f"writer-{size}.pier"))
            stack.callback(writer.close)
            server_db = sqlite3.connect(baseline)
            stack.callback(server_db.close)
            for round_number in range(self.plan.delta_rounds):
                bodies = {rid: {"name": f"changed {round_number}", "city": "Oslo", "tier": round_number} for rid in changed_ids}
                for rid, body in bodies.items():
                    writer.put("customers", rid, body)
                report = writer.sync(url=serve.url, token=API_KEY)
                if report.applied != 10:
                    raise RuntimeError(f"the server applied {report.applied} of the writer's 10 changes")
                with server_db:
                    server_db.executemany("UPDATE records SET body = ? WHERE id = ?",
                                          [(json.dumps(b, separators=(",", ":")), rid) for rid, b in bodies.items()])
                p = pier_sync()
                r = full_refetch()
                if p["pulled"] != 10 or p["records_after"] != size:
                    raise RuntimeError(f"the delta sync pulled {p['pulled']} records, not 10 (now {p['records_after']} of {size})")
                if r["records_after"] != size:
                    raise RuntimeError(f"the refetch left {r['records_after']} of {size} records")
                out.append(dict(p, section="http", kind="delta", side="pier", records=size))
                out.append(dict(r, section="http", kind="delta", side="refetch", records=size))
        for path in (pier_client, refetch_client, self.scratch / f"writer-{size}.pier", baseline):
            remove_db(path)
        return out

    def crypto(self) -> List[Dict[str, Any]]:
        log("crypto: Pier encrypted against plain, then SQLite3MC and SQLCipher against theirs")
        lines = json_lines(run([self.args.bench_crypto, *self.plan.crypto, "--json"]))
        for peer, python in (("apsw-sqlite3mc-chacha20", self.args.mc_python), ("apsw-sqlite3mc-sqlcipher", self.args.mc_python),
                             ("sqlcipher3", self.args.cipher_python)):
            lines += json_lines(run([python, str(ROOT / "benchmarks" / "crypto" / "peers.py"), "--peer", peer, *self.plan.crypto,
                                     "--dir", str(self.scratch)]))
        return [dict(line, section="crypto") for line in lines]

    def load(self) -> List[Dict[str, Any]]:
        log("load: concurrent clients over HTTP against the raw insert rate, SQLite and PostgreSQL")
        out = self.scratch / "load.jsonl"
        stores = "sqlite,postgres" if os.environ.get("PIER_TEST_POSTGRES_URL") else "sqlite"
        subprocess.run([self.args.bench_load, "--pier", self.args.pier, "--stores", stores, *self.plan.load, "--json", str(out)],
                       check=True, stdout=sys.stderr)
        return [dict(line, section="load") for line in json_lines(out.read_text())]


def prefetch_hits(url: str) -> int:
    """Pulls `pier serve` answered with a page prepared ahead, from its /metrics."""
    import urllib.request
    with urllib.request.urlopen(url + "/metrics", timeout=30) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith('pier_pull_prefetch_total{event="hit"}'):
                return int(float(line.split()[-1]))
    return 0


def machine() -> Dict[str, Any]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import pier

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "kernel": platform.release(), "sqlite": sqlite3.sqlite_version,
            "python": platform.python_version(), "pier": pier.version(), "commit": commit,
            "load_average_start": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every part still works")
    parser.add_argument("--only", default="", help="comma-separated sections to run")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--results", required=True, help="the JSON results file (read with --report-only)")
    parser.add_argument("--report", required=True, help="the Markdown report to write; plots go to plots/ beside it")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--sizes", default="", help="comma-separated dataset sizes for apply and http (default: the plan's)")
    for name in ("bench-local", "bench-sync", "bench-crypto", "bench-load", "pier", "library", "apsw-python", "mc-python", "cipher-python"):
        parser.add_argument(f"--{name}")
    args = parser.parse_args()
    if args.pier:
        os.environ["PIER_BIN"] = args.pier  # the `pier serve` that Serve starts
    if args.library:
        os.environ["PIER_LIBRARY"] = args.library

    if not args.report_only:
        plan = Plan(args.smoke)
        if args.sizes:
            plan.sizes = [int(x) for x in args.sizes.split(",")]
        wanted = [s for s in (args.only.split(",") if args.only else SECTIONS) if s and s not in args.skip.split(",")]
        if "http" in wanted and "apply" not in wanted:
            # Section 3's baseline (the raw insert rate) comes from the apply section: both
            # are measured in the same run, on the same master stores.
            wanted.insert(wanted.index("http"), "apply")
        unknown = [s for s in wanted if s not in SECTIONS]
        if unknown:
            parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
        scratch = Path(tempfile.mkdtemp(prefix="pier-peers-"))
        results: Dict[str, Any] = {"machine": machine(), "smoke": args.smoke, "figures": [],
                                   "build": "debug" if args.smoke else "release"}
        runner = Runner(args, plan, scratch)
        started = time.monotonic()
        try:
            figures: List[Dict[str, Any]] = results["figures"]
            if "writes" in wanted:
                figures += runner.writes()
            if "apply" in wanted or "http" in wanted:
                for size in plan.sizes:
                    log(f"seeding a master store with {size:,} records")
                    master = runner.seed(size)
                    if "apply" in wanted:
                        figures += runner.apply(size, master)
                    if "http" in wanted:
                        figures += runner.http(size, master)
                    remove_db(master)
            if "crypto" in wanted:
                figures += runner.crypto()
            if "load" in wanted:
                figures += runner.load()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        results["machine"]["duration_s"] = round(time.monotonic() - started, 1)
        results["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
        results["sections"] = wanted
        for figure in results["figures"]:
            figure["run"] = results["machine"]["date"]
        previous_path = Path(args.results)
        if wanted != SECTIONS and previous_path.exists():
            # A partial run replaces its own sections and keeps the others' figures (and
            # says so in the report's header).
            previous = json.loads(previous_path.read_text())
            if previous.get("smoke") == args.smoke:
                ran = {section_of(f) for f in results["figures"]} | set(wanted)
                kept = [dict(f, run=f.get("run", previous["machine"]["date"])) for f in previous["figures"] if section_of(f) not in ran]
                results["figures"] = kept + results["figures"]
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps(results, indent=1) + "\n")
        log(f"results: {args.results}")

    results = json.loads(Path(args.results).read_text())
    sys.path.insert(0, str(HERE))
    import render_report  # beside this file (the harness's reliability/report.py is another module)

    render_report.render(results, Path(args.report), published=HERE / "published.json")
    log(f"report: {args.report}")


if __name__ == "__main__":
    main()

"""Turns the results of scripts/reliability into docs/RELIABILITY.md.

    python3 reliability/report.py markdown RESULTS_DIR MODE OUT.md
    python3 reliability/report.py fuzz-json FUZZ_LOG SECONDS EXIT_CODE      (prints JSON)
    python3 reliability/report.py iofault-json TEST_LOG EXIT_CODE           (prints JSON)

Each part of the harness writes one JSON object (``part``, its seed, its figures, the
command that repeats it). The report renders every figure of every part, flattened into
rows, under a fixed description of what the part does and what a user can rely on.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

PARTS: List[Tuple[str, str, str]] = [
    (
        "crash",
        "Kill -9 crash test",
        "Client processes write and sync against `pier serve` over loopback HTTP and are killed with "
        "SIGKILL at random moments and at named crash points (after a local commit, after a batch is "
        "built, after the server answered, inside the apply transaction); the server is killed the same "
        "way (before and after it commits a batch). After a restart and a final sync: every acknowledged "
        "write is there, no change is applied twice, every database passes `PRAGMA integrity_check` and "
        "the business log explains every record's version.",
    ),
    (
        "netfaults",
        "Network faults",
        "A loopback proxy between clients and `pier serve` follows seeded schedules: it delays, drops, "
        "resets mid-request and mid-reply, truncates and corrupts replies, and duplicates requests. "
        "After each schedule the link heals; every replica must converge with nothing lost and nothing "
        "applied twice.",
    ),
    (
        "hostile",
        "Hostile frames at scale",
        "Frames made from real syncs are corrupted, truncated, extended, given lying or oversized "
        "lengths, turned into decompression bombs, replaced by garbage or the wrong message type, "
        "replayed and reordered, and sent to the server's handler and to the client engine. Every one "
        "is refused with a typed error (replays are answered from stored results), memory stays "
        "bounded, and both databases are unchanged.",
    ),
    (
        "fuzz",
        "Fuzzing",
        "libFuzzer with AddressSanitizer on four targets: the frame decoder, the server's handler on "
        "structured requests, JSON merge patches and the field merge (with their properties checked), "
        "and the C API's argument handling. Committed corpora live in `fuzz/<target>/corpus`.",
    ),
    (
        "concurrency",
        "Concurrency",
        "Clients hammer 100 shared hot records through `pier serve` on each master store: counters "
        "whose final value must equal the sum of acknowledged increments (conflicts resolved by "
        "rebasing the increment) and add-only sets that must hold every acknowledged element. All "
        "replicas must end equal.",
    ),
    (
        "iofault",
        "I/O faults and a full disk",
        "A test VFS fails the k-th write or fsync (once, or from then on) or fills the disk while the "
        "local store writes records and while it applies a sync (Tests/PierSyncTests/IOFaultTests.swift). "
        "Afterwards the file is sound, every acknowledged write is there, failed writes left nothing, "
        "and every pending change is still pending or synced and on the server.",
    ),
    (
        "security",
        "Security negatives",
        "Tokens with `alg: none`, algorithm confusion, wrong `aud` or `iss`, expired, not yet valid, "
        "an unknown key id or a bad signature are refused; a user's credential pulls zero records of "
        "another scope over random requests and cannot write there; oversize and slow-drip requests "
        "are cut off.",
    ),
]

SKIP_KEYS = {"part", "command", "seed", "work", "violations", "ok"}


def flatten(value: Any, prefix: str = "") -> List[Tuple[str, str]]:
    """Rows of (figure, value) from nested JSON; long lists are summarised by their length."""
    rows: List[Tuple[str, str]] = []
    if isinstance(value, dict):
        for key in sorted(value):
            if not prefix and key in SKIP_KEYS:
                continue
            rows += flatten(value[key], f"{prefix}{key}.")
        return [(name.rstrip("."), text) for name, text in rows]
    if isinstance(value, list):
        if len(value) <= 6 and all(not isinstance(v, (dict, list)) for v in value):
            return [(prefix, ", ".join(str(v) for v in value) if value else "none")]
        return [(prefix, f"{len(value)} items")]
    if isinstance(value, float):
        return [(prefix, f"{value:,.2f}")]
    if isinstance(value, int) and not isinstance(value, bool):
        return [(prefix, f"{value:,}")]
    return [(prefix, str(value))]


def markdown(results: Path, mode: str, out: Path) -> int:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cores = os.cpu_count() or 0
    lines = [
        "# Reliability",
        "",
        "Pier's promise is that no acknowledged write is ever lost or applied twice, whatever kills "
        "the processes, breaks the link or arrives on the wire. The reliability harness "
        "(`scripts/reliability`, issue 7) tries to break that promise on purpose and writes this file.",
        "",
        f"This report: **{mode}** run, {now}, {platform.system()} {platform.release()}, {cores} cores.",
        "",
        "```sh",
        "scripts/reliability            # the CI sizes (scripts/test runs them on every change)",
        "scripts/reliability --full     # the full figures; writes this file",
        "scripts/reliability --seed S   # repeat a run: every part takes the same seed",
        "```",
        "",
        "Each part below gives its figures, its seed and the command that repeats it alone. The "
        "crash points are compiled into the library and armed only by the environment variable "
        "`PIER_TEST_CRASH_POINT=name[:n]` (Sources/PierStore/CrashPoint.swift).",
        "",
    ]
    failed = 0
    for part, title, description in PARTS:
        path = results / f"{part}.json"
        lines += [f"## {title}", "", description, ""]
        if not path.exists():
            lines += ["Not run in this report.", ""]
            continue
        data: Dict[str, Any] = json.loads(path.read_text())
        ok = data.get("ok", not data.get("violations"))
        if not ok:
            failed = 1
        lines += [f"Result: **{'passed' if ok else 'FAILED'}**" + (f" · seed `{data['seed']}`" if "seed" in data else ""), ""]
        lines += ["| figure | value |", "|---|---|"]
        for name, value in flatten(data):
            lines.append(f"| {name} | {value} |")
        lines.append("")
        if data.get("violations"):
            lines += ["Violations:", ""] + [f"- {v}" for v in data["violations"][:20]] + [""]
        if data.get("command"):
            lines += ["Repeat:", "", "```sh", str(data["command"]), "```", ""]
    lines += [
        "## What the harness found",
        "",
        "Each of these failed a part of the harness (or its review) first and is fixed, with a "
        "regression test:",
        "",
        "- A record created and pushed, whose reply was lost, then deleted, came back: the delete "
        "removed the never-synced row instead of leaving a tombstone (crash and network-fault parts; "
        "`deleteAfterLostReply` in Tests/PierSyncTests/ScenarioTests.swift).",
        "- The client applied a stale or reordered response to the batch in flight (hostile frames; "
        "`replayedAndReorderedResponses`).",
        "- A batch delivered again after the server had forgotten it (64 batches later) would have been "
        "applied twice (`lateDuplicateBatch`).",
        "- A JWT naming an unknown `kid` was verified with the default key even when key ids were "
        "configured (security part; `keyIDs` in Tests/PierHTTPTests/AuthTests.swift).",
        "- A request body dripped a byte at a time held its connection open for ever (security part; "
        "`slowDrip` in Tests/PierHTTPTests/LimitsTests.swift).",
        "",
        "## What this does not cover",
        "",
        "- Power loss (as opposed to a killed process): `synchronous=NORMAL` keeps every commit through "
        "a process crash but may lose the last transactions through an operating-system crash; "
        "`PIER_DURABILITY_FULL` closes that gap at the cost of an fsync per commit.",
        "- A replayed response of the same size to a request with the same pull cursor cannot be told "
        "from the real answer (version-1 responses do not echo the batch number); TLS rules that out on "
        "a network (docs/PROTOCOL.md, section 5.2).",
        "- The C API fuzz target drives the release library, which carries no coverage "
        "instrumentation: the fuzzer is guided by the harness's own branches.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"report: {out}")
    return failed


def fuzz_json(log: Path, seconds: str, code: str) -> Dict[str, Any]:
    targets: Dict[str, Dict[str, Any]] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"fuzz: (\w+): Done (\d+) runs in (\d+) second", line)
        if match:
            targets.setdefault(match.group(1), {})["runs"] = int(match.group(2))
            targets[match.group(1)]["seconds"] = int(match.group(3))
        match = re.match(r"fuzz: (\w+): stat::peak_rss_mb:\s*(\d+)", line)
        if match:
            targets.setdefault(match.group(1), {})["peak_rss_mb"] = int(match.group(2))
    return {
        "part": "fuzz",
        "ok": code == "0",
        "seconds_per_target": int(seconds),
        "targets": targets,
        "crashes": 0 if code == "0" else "see .build-fuzz/<target>/",
        "command": f"scripts/fuzz --seconds {seconds}",
    }


def iofault_json(log: Path, code: str) -> Dict[str, Any]:
    text = log.read_text(errors="replace")
    match = re.search(r"Test run with (\d+) tests? in \d+ suites? (passed|failed)", text)
    return {
        "part": "iofault",
        "ok": code == "0",
        "tests": int(match.group(1)) if match else 0,
        "plans": "k-th write fails once; writes fail from the k-th on; k-th fsync fails once; "
        "fsyncs fail from the k-th on; disk full after k KiB",
        "write_path_cases": "5 plans x k = 1...12",
        "apply_path_cases": "5 plans x k = 1...10",
        "command": "swift test --filter IOFaultTests",
    }


def main(argv: List[str]) -> int:
    if len(argv) >= 5 and argv[1] == "markdown":
        return markdown(Path(argv[2]), argv[3], Path(argv[4]))
    if len(argv) == 5 and argv[1] == "fuzz-json":
        print(json.dumps(fuzz_json(Path(argv[2]), argv[3], argv[4]), indent=2))
        return 0
    if len(argv) == 4 and argv[1] == "iofault-json":
        print(json.dumps(iofault_json(Path(argv[2]), argv[3]), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

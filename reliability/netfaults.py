"""Network faults: replicas converge and lose nothing after a faulty link heals.

Issue 7 of the reliability harness. Each schedule starts a fresh ``pier serve`` (SQLite
master) and puts a loopback TCP proxy in front of it, one listener per client. The proxy
reads HTTP/1.1 requests and responses whole (``Content-Length`` or chunked bodies), so
every fault lands on a frame:

==============  ===========================================================================
pass            forwarded untouched
delay           held 10-400 ms before forwarding
drop            the connection is closed (FIN) and the request never reaches the server
reset_request   part of the request reaches the server, then both sides get a TCP RST
lost_reply      the server answers (and has applied the batch), the client gets a RST
truncate        a prefix of the response, then FIN
corrupt         one byte of the response body is flipped (the frame's CRC must catch it)
duplicate       the request is also sent on a second upstream connection, 0-300 ms apart:
                a replay the server must answer from its stored results
blackhole       the request is swallowed and nothing comes back (the client times out)
slow            the server answers, the reply trickles out slower than the client timeout
==============  ===========================================================================

A schedule draws, from ``random.Random(f"netfaults:{seed}:{number}")``, a fault
probability, a weight per fault kind and a length (client steps on the faulty link).
Three in-process ``pier.Database`` clients run concurrently, each writing its own
records (``own``) and a few shared ones (``shared``, last-write-wins) and syncing through
its own link with a 1 s timeout and 0-2 quick retries; every link draws its faults from
its own seeded stream, so a client meets the same faults whatever the thread timing.
Then the links heal (pass-through), the clients sync until nothing is pending, and:

- every client's own records are on the server with the value of its last acknowledged
  write (a deleted record is gone): nothing lost, nothing resurrected;
- every shared record holds a body some client wrote to it (or is deleted, if a client
  deleted it): nothing invented;
- every client's records equal the server's (converged), with nothing pending and no
  conflict;
- the business log shows no change applied twice and explains every record's version
  (``common.audit_log``); ``PRAGMA integrity_check`` passes on every store.

Run: ``python3 reliability/netfaults.py`` (CI: 50 schedules), ``--full`` (500),
``--schedules N``, ``--seed S``; ``--schedule K`` repeats one schedule of a seed. The
result names the command that repeats the run; exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import os
import asyncio
import random
import shutil
import socket
import struct
import sys
import tempfile
import functools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple

from common import API_KEY, Serve, audit_log, integrity, local_records, run_threads, server_records, write_result

import pier

FAULTS = ("delay", "drop", "reset_request", "lost_reply", "truncate", "corrupt", "duplicate", "blackhole", "slow")
OWN = "own"
SHARED = "shared"
COLLECTIONS = [OWN, SHARED]
CLIENTS = 3
OWN_RECORDS = 6
SHARED_RECORDS = 3
#: The clients' request timeout on the faulty link (seconds); blackhole and slow outlast it.
CLIENT_TIMEOUT = 1.0
#: The proxy's own bound on any upstream connect or read.
IO_TIMEOUT = 30.0
#: The bound on one schedule's client threads.
SCHEDULE_TIMEOUT = 240.0
QUIESCE_PASSES = 8


# ---------------------------------------------------------------------------------------
# HTTP/1.1 framing
# ---------------------------------------------------------------------------------------


@dataclass
class Message:
    """One HTTP/1.1 request or response as it travels: head and raw body bytes."""

    head: bytes
    body: bytes = b""
    #: (start, end) offsets in ``body`` of payload bytes (chunk framing excluded).
    payload: List[Tuple[int, int]] = field(default_factory=list)
    #: The sender closes the connection after this message.
    close: bool = False

    @property
    def raw(self) -> bytes:
        return self.head + self.body

    @property
    def status(self) -> int:
        parts = self.head.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def headers(head: bytes) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name:
            out[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return out


async def read_message(reader: asyncio.StreamReader, response: bool) -> Optional[Message]:
    """Reads one message; None when the peer closed cleanly before sending one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    fields = headers(head)
    message = Message(head=head, close="close" in fields.get("connection", "").lower())
    status = message.status if response else 0
    if response and (100 <= status < 200 or status in (204, 304)):
        return message
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            body += line
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    body += trailer
                    if trailer == b"\r\n":
                        break
                break
            start = len(body)
            body += await reader.readexactly(size)
            message.payload.append((start, len(body)))
            body += await reader.readexactly(2)
        message.body = bytes(body)
    elif "content-length" in fields:
        message.body = await reader.readexactly(int(fields["content-length"]))
        message.payload = [(0, len(message.body))] if message.body else []
    elif response:
        message.body = await reader.read()  # delimited by the end of the connection
        message.payload = [(0, len(message.body))] if message.body else []
        message.close = True
    return message


def reset(writer: asyncio.StreamWriter) -> None:
    """Aborts a connection with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def exchange(port: int, request: Message) -> Message:
    """Sends a request to the server on a new connection and reads the whole response."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), IO_TIMEOUT)
    try:
        writer.write(request.raw)
        await writer.drain()
        while True:
            response = await asyncio.wait_for(read_message(reader, response=True), IO_TIMEOUT)
            if response is None:
                raise ConnectionError("the server closed the connection without answering")
            if not 100 <= response.status < 200:
                return response
    finally:
        writer.transport.abort()


async def client_gone(reader: asyncio.StreamReader, limit: float) -> None:
    """Waits (at most ``limit`` seconds) for the client to close or reset its side."""
    try:
        await asyncio.wait_for(reader.read(), limit)
    except (asyncio.TimeoutError, ConnectionError):
        pass


# ---------------------------------------------------------------------------------------
# The proxy
# ---------------------------------------------------------------------------------------


@dataclass
class Mix:
    """A schedule's faults: the chance that a request meets one, and each kind's weight."""

    probability: float
    weights: Dict[str, float]

    @classmethod
    def draw(cls, rng: random.Random) -> "Mix":
        kinds = rng.sample(FAULTS, rng.randint(2, len(FAULTS)))
        weights = {kind: rng.uniform(0.2, 1.0) for kind in kinds}
        # Timeouts cost a whole client timeout each: keep them rarer than the cheap faults.
        for kind in ("blackhole", "slow"):
            if kind in weights:
                weights[kind] *= 0.3
        return cls(probability=rng.uniform(0.15, 0.6), weights=weights)


class Link:
    """One client's path through the proxy: its listener, fault stream and counters."""

    def __init__(self, rng: random.Random, mix: Mix, upstream: int) -> None:
        self.rng = rng
        self.mix = mix
        self.upstream = upstream
        self.faulty = True
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.errors: List[str] = []
        self.duplicate_statuses: Counter[int] = Counter()
        self.server: Optional[asyncio.AbstractServer] = None
        self.port = 0
        self.writers: Set[asyncio.StreamWriter] = set()
        self.tasks: Set["asyncio.Task[None]"] = set()

    def decide(self) -> Tuple[str, random.Random]:
        """The fault for the next request, and a generator for its details (cut points...)."""
        self.requests += 1
        detail = random.Random(self.rng.getrandbits(64))
        if not self.faulty or self.rng.random() >= self.mix.probability:
            return "pass", detail
        kinds = sorted(self.mix.weights)
        return self.rng.choices(kinds, weights=[self.mix.weights[k] for k in kinds])[0], detail


Handler = Callable[[Link, Message, asyncio.StreamReader, asyncio.StreamWriter, random.Random], Awaitable[bool]]


class Proxy:
    """An asyncio loop on its own thread serving the links of the running schedule."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="netfaults-proxy", daemon=True)
        self.thread.start()
        self.handlers: Dict[str, Handler] = {
            "pass": self.forward,
            "delay": self.delay,
            "drop": self.drop,
            "reset_request": self.reset_request,
            "lost_reply": self.lost_reply,
            "truncate": self.truncate,
            "corrupt": self.corrupt,
            "duplicate": self.duplicate,
            "blackhole": self.blackhole,
            "slow": self.slow,
        }

    def run(self, coroutine: Awaitable[Any], timeout: float = IO_TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def open(self, link: Link) -> str:
        async def start() -> None:
            link.server = await asyncio.start_server(lambda r, w: self.serve(link, r, w), "127.0.0.1", 0)
            link.port = int(link.server.sockets[0].getsockname()[1])

        self.run(start())
        return f"http://127.0.0.1:{link.port}"

    def settle(self, link: Link) -> None:
        """Waits for the link's duplicate requests still on their way to the server."""

        async def wait() -> None:
            if link.tasks:
                await asyncio.wait(set(link.tasks), timeout=IO_TIMEOUT)

        self.run(wait(), IO_TIMEOUT + 5)

    def close(self, link: Link) -> None:
        async def stop() -> None:
            if link.server is not None:
                link.server.close()
            for writer in list(link.writers):
                writer.transport.abort()
            for task in list(link.tasks):
                task.cancel()

        self.run(stop())

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def serve(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link.writers.add(writer)
        try:
            while True:
                request = await read_message(reader, response=False)
                if request is None:
                    return
                kind, detail = link.decide()
                if kind != "pass":
                    link.faults[kind] += 1
                if not await self.handlers[kind](link, request, reader, writer, detail):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: its own timeout, or a reset of ours
        except asyncio.CancelledError:
            pass  # the schedule is over
        except Exception as error:  # a malformed message, a server that does not answer
            link.errors.append(f"{type(error).__name__}: {error}")
        finally:
            link.writers.discard(writer)
            writer.transport.abort()

    async def answer(self, writer: asyncio.StreamWriter, response: Message) -> bool:
        writer.write(response.raw)
        await writer.drain()
        return not response.close

    async def forward(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        return await self.answer(writer, await exchange(link.upstream, request))

    async def delay(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        await asyncio.sleep(detail.uniform(0.01, 0.4))
        return await self.forward(link, request, reader, writer, detail)

    async def drop(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        writer.close()
        return False

    async def reset_request(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        raw = request.raw
        # Mostly inside the body (the head whole), sometimes inside the head.
        cut = detail.randrange(len(request.head), len(raw)) if request.body and detail.random() < 0.8 else detail.randrange(1, len(request.head))
        _, upstream = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", link.upstream), IO_TIMEOUT)
        upstream.write(raw[:cut])
        await upstream.drain()
        await asyncio.sleep(0.02)  # let the server read the part it got
        reset(upstream)
        reset(writer)
        return False

    async def lost_reply(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        await exchange(link.upstream, request)
        reset(writer)
        return False

    async def truncate(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        raw = (await exchange(link.upstream, request)).raw
        writer.write(raw[: detail.randrange(0, len(raw))])
        await writer.drain()
        writer.close()
        return False

    async def corrupt(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        response = await exchange(link.upstream, request)
        if response.payload:
            body = bytearray(response.body)
            start, end = detail.choice(response.payload)
            body[detail.randrange(start, end)] ^= detail.randrange(1, 256)
            response.body = bytes(body)
        else:
            link.faults["corrupt"] -= 1  # nothing to corrupt: it went through as it was
        return await self.answer(writer, response)

    async def duplicate(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        lag = detail.uniform(0.0, 0.3)

        async def replay() -> None:
            await asyncio.sleep(lag)
            try:
                link.duplicate_statuses[(await exchange(link.upstream, request)).status] += 1
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError) as error:
                link.errors.append(f"duplicate: {type(error).__name__}: {error}")

        task = asyncio.ensure_future(replay())
        link.tasks.add(task)
        task.add_done_callback(link.tasks.discard)
        return await self.forward(link, request, reader, writer, detail)

    async def blackhole(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        await client_gone(reader, CLIENT_TIMEOUT * 3 + 1)
        return False

    async def slow(self, link: Link, request: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, detail: random.Random) -> bool:
        raw = (await exchange(link.upstream, request)).raw
        # The whole reply would take longer than the client waits.
        pause = (CLIENT_TIMEOUT + 0.5) / len(raw)

        async def trickle() -> None:
            for index in range(len(raw)):
                writer.write(raw[index : index + 1])
                await writer.drain()
                await asyncio.sleep(pause)

        sender = asyncio.ensure_future(trickle())
        watcher = asyncio.ensure_future(client_gone(reader, CLIENT_TIMEOUT * 3 + 1))
        await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sender, watcher):
            task.cancel()
        await asyncio.gather(sender, watcher, return_exceptions=True)
        return False


# ---------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------


class Client:
    """One replica: a local store, its link, and what it knows it wrote."""

    def __init__(self, number: int, path: Path, rng: random.Random, url: str) -> None:
        self.number = number
        self.db = pier.Database(str(path))
        self.path = path
        self.rng = rng
        self.url = url
        #: Own records: id -> the body of the last acknowledged write, or None once deleted.
        self.own: Dict[str, Optional[Dict[str, Any]]] = {}
        #: Shared records: id -> every body this client wrote to it.
        self.shared_bodies: Dict[str, List[Dict[str, Any]]] = {}
        self.shared_deleted: Set[str] = set()
        self.writes = 0
        self.syncs = 0
        self.sync_errors: Counter[str] = Counter()

    def body(self) -> Dict[str, Any]:
        self.writes += 1
        return {"client": self.number, "write": self.writes, "token": self.rng.getrandbits(48), "pad": "x" * self.rng.choice((0, 10, 300, 3000))}

    def write(self) -> None:
        rng = self.rng
        op = rng.choices(("put_own", "patch_own", "delete_own", "put_shared", "delete_shared"), weights=(40, 15, 10, 25, 10))[0]
        if op == "put_own" or (op == "patch_own" and not self.live_own()):
            record = f"c{self.number}-r{rng.randrange(OWN_RECORDS)}"
            body = self.body()
            self.db.put(OWN, record, body)
            self.own[record] = body
        elif op == "patch_own":
            record = rng.choice(self.live_own())
            patch = {"patched": self.body()["token"], "write": self.writes}
            self.db.patch(OWN, record, patch)
            self.own[record] = {**(self.own[record] or {}), **patch}
        elif op == "delete_own":
            if self.live_own():
                record = rng.choice(self.live_own())
                self.db.delete(OWN, record)
                self.own[record] = None
        elif op == "put_shared":
            record = f"s{rng.randrange(SHARED_RECORDS)}"
            body = self.body()
            self.db.put(SHARED, record, body)
            self.shared_bodies.setdefault(record, []).append(body)
        else:
            record = f"s{rng.randrange(SHARED_RECORDS)}"
            try:
                self.db.delete(SHARED, record)
                self.shared_deleted.add(record)
            except pier.NotFoundError:
                pass

    def live_own(self) -> List[str]:
        return sorted(record for record, body in self.own.items() if body is not None)

    def sync(self, **options: Any) -> Optional[pier.SyncReport]:
        self.syncs += 1
        try:
            return self.db.sync(url=self.url, token=API_KEY, **options)
        except pier.PierError as error:
            self.sync_errors[type(error).__name__] += 1
            return None

    def work(self, steps: int) -> None:
        """The faulty phase: random writes and syncs through the link."""
        for _ in range(steps):
            for _ in range(self.rng.randint(1, 4)):
                self.write()
            for _ in range(self.rng.choice((0, 1, 1, 1, 2))):
                self.sync(
                    timeout=CLIENT_TIMEOUT,
                    connect_timeout=CLIENT_TIMEOUT,
                    retries=self.rng.randint(0, 2),
                    retry_delay=0.02,
                    retry_max_delay=0.1,
                )

    def pending(self) -> int:
        return int(self.db.info()["pending"])


# ---------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    number: int
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    duplicate_statuses: Counter[int] = field(default_factory=Counter)
    sync_errors: Counter[str] = field(default_factory=Counter)
    writes: int = 0
    syncs: int = 0
    records: int = 0
    #: Batches the server answered from its stored results (its log says "replayed batch").
    replays: int = 0
    lost: int = 0
    applied_twice: int = 0
    violations: List[str] = field(default_factory=list)
    seconds: float = 0.0


def quiesce(clients: List[Client]) -> List[str]:
    """Syncs every client over the healed links until a whole pass moves nothing."""
    for _ in range(QUIESCE_PASSES):
        moved = False
        for client in clients:
            report = client.db.sync(url=client.url, token=API_KEY, timeout=30, retries=3, retry_delay=0.05)
            moved = moved or report.pushed > 0 or report.pulled > 0
        if not moved and all(client.pending() == 0 for client in clients):
            return []
    return [f"not quiet after {QUIESCE_PASSES} passes over the healed link: pending " + ", ".join(str(c.pending()) for c in clients)]


def check(clients: List[Client], master: Path) -> Tuple[List[str], int, int, int]:
    """The schedule's invariants: (violations, lost, applied twice, records checked)."""
    violations: List[str] = []
    server = server_records(master)
    live = {key: body for key, body in server.items() if body is not None and key[0] in COLLECTIONS}
    lost = 0
    checked = 0
    for client in clients:
        for record, expected in sorted(client.own.items()):
            checked += 1
            actual = server.get((OWN, record))
            if actual != expected:
                lost += 1
                violations.append(f"client {client.number}: {OWN}/{record} acknowledged as {short(expected)}, server has {short(actual)}")
        prefix = f"c{client.number}-"
        for (collection, record), body in sorted(live.items()):
            if collection == OWN and record.startswith(prefix) and record not in client.own:
                violations.append(f"{OWN}/{record} is on the server ({short(body)}) but client {client.number} never wrote it")
    for record in (f"s{n}" for n in range(SHARED_RECORDS)):
        checked += 1
        actual = server.get((SHARED, record))
        written = [body for client in clients for body in client.shared_bodies.get(record, [])]
        deleted = any(record in client.shared_deleted for client in clients)
        if actual is None:
            if written and not deleted:
                lost += 1
                violations.append(f"{SHARED}/{record}: written and never deleted, but the server has nothing")
        elif actual not in written:
            violations.append(f"{SHARED}/{record} holds {short(actual)}, which no client wrote")
    for client in clients:
        local = local_records(client.db, COLLECTIONS)
        if local != live:
            differing = sorted(set(local) ^ set(live)) + sorted(k for k in set(local) & set(live) if local[k] != live[k])
            violations.append(f"client {client.number} differs from the server on {len(differing)} records, e.g. {differing[:3]}")
        info = client.db.info()
        if info["pending"] or info["conflicts"]:
            violations.append(f"client {client.number}: {info['pending']} pending, {info['conflicts']} conflicts after quiescing")
    audit = audit_log(master)
    if not audit.ok:
        violations.append(f"business log: applied twice {audit.applied_twice[:5]}, inconsistent {audit.inconsistent[:5]}")
    for path in [master] + [client.path for client in clients]:
        result = integrity(path)
        if result != "ok":
            violations.append(f"integrity of {path.name}: {result}")
    return violations, lost, len(audit.applied_twice), checked


def short(body: Optional[Dict[str, Any]]) -> str:
    if body is None:
        return "nothing"
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in body.items() if k != "pad") + "}"


def run_schedule(number: int, seed: int, work: Path, proxy: Proxy) -> Outcome:
    started = time.monotonic()
    rng = random.Random(f"netfaults:{seed}:{number}")
    mix = Mix.draw(rng)
    steps = rng.randint(4, 14)
    folder = work / f"schedule-{number:04d}"
    outcome = Outcome(number)
    with Serve(folder, str(folder / "master.pier")) as serve:
        links = [Link(random.Random(rng.getrandbits(64)), mix, serve.port) for _ in range(CLIENTS)]
        clients = [Client(n, folder / f"client{n}.pier", random.Random(rng.getrandbits(64)), proxy.open(link)) for n, link in enumerate(links)]
        try:
            run_threads({f"client {c.number}": functools.partial(c.work, steps) for c in clients},
                        SCHEDULE_TIMEOUT, f"schedule {number}")
            for link in links:
                link.faulty = False
                proxy.settle(link)
            outcome.violations += quiesce(clients)
            violations, outcome.lost, outcome.applied_twice, outcome.records = check(clients, folder / "master.pier")
            outcome.violations += violations
            for link in links:
                outcome.requests += link.requests
                outcome.faults.update(link.faults)
                outcome.duplicate_statuses.update(link.duplicate_statuses)
                outcome.violations += [f"proxy: {error}" for error in link.errors]
            for client in clients:
                outcome.writes += client.writes
                outcome.syncs += client.syncs
                outcome.sync_errors.update(client.sync_errors)
        finally:
            for link in links:
                proxy.close(link)
            for client in clients:
                client.db.close()
    outcome.replays = serve.stderr_path.read_text(errors="replace").count("replayed batch")
    outcome.seconds = time.monotonic() - started
    if not outcome.violations:
        shutil.rmtree(folder, ignore_errors=True)
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the full run: 500 schedules")
    parser.add_argument("--schedules", type=int, help="how many schedules (default 50, --full 500)")
    parser.add_argument("--schedule", type=int, help="run only this schedule number of the seed")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: random)")
    parser.add_argument("--work", help="folder for stores and logs (default: a temporary folder)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    # The server logs each replayed batch at level info; the result counts them.
    os.environ["PIER_LOG_LEVEL"] = "info"
    count = args.schedules or (500 if args.full else 50)
    numbers = [args.schedule] if args.schedule is not None else list(range(count))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pier-netfaults-"))
    work.mkdir(parents=True, exist_ok=True)
    command = f"python3 reliability/netfaults.py --seed {seed} " + (f"--schedule {args.schedule}" if args.schedule is not None else f"--schedules {count}")

    started = time.monotonic()
    proxy = Proxy()
    outcomes: List[Outcome] = []
    try:
        for number in numbers:
            outcome = run_schedule(number, seed, work, proxy)
            outcomes.append(outcome)
            injected = ", ".join(f"{k} {v}" for k, v in sorted(outcome.faults.items()))
            print(f"schedule {number}: {outcome.requests} requests, faults: {injected or 'none'}; {outcome.writes} writes, "
                  f"{outcome.seconds:.1f} s{'' if not outcome.violations else '  VIOLATIONS'}", file=sys.stderr)
    finally:
        proxy.shutdown()

    faults: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    duplicates: Counter[int] = Counter()
    for outcome in outcomes:
        faults.update(outcome.faults)
        errors.update(outcome.sync_errors)
        duplicates.update(outcome.duplicate_statuses)
    failed = [outcome for outcome in outcomes if outcome.violations]
    result = {
        "part": "netfaults",
        "ok": not failed,
        "seed": seed,
        "schedules": len(outcomes),
        "requests": sum(o.requests for o in outcomes),
        "faults": {kind: faults.get(kind, 0) for kind in FAULTS},
        "duplicates_answered": {str(status): n for status, n in sorted(duplicates.items())},
        "replays_answered": sum(o.replays for o in outcomes),
        "syncs": sum(o.syncs for o in outcomes),
        "failed_syncs": dict(sorted(errors.items())),
        "writes_checked": sum(o.writes for o in outcomes),
        "records_checked": sum(o.records for o in outcomes),
        "lost": sum(o.lost for o in outcomes),
        "applied_twice": sum(o.applied_twice for o in outcomes),
        "duration_s": round(time.monotonic() - started, 1),
        "command": command,
    }
    if failed:
        result["failed_schedules"] = [outcome.number for outcome in failed]
        result["violations"] = [
            f"schedule {outcome.number} (repeat: python3 reliability/netfaults.py --seed {seed} --schedule {outcome.number}): {line}"
            for outcome in failed
            for line in outcome.violations
        ]
        result["work"] = str(work)
    write_result(args.json, result)
    if failed:
        for outcome in failed:
            print(f"netfaults: schedule {outcome.number} of seed {seed} broke an invariant "
                  f"(repeat: python3 reliability/netfaults.py --seed {seed} --schedule {outcome.number}):", file=sys.stderr)
            for line in outcome.violations:
                print(f"  {line}", file=sys.stderr)
        return 1
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

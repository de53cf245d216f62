"""The built-in HTTP transport (``Database.sync(url=...)``) against a fault-injecting HTTP
front (http_faults.py) for an in-process ``pier.Server``: retries converge without
applying anything twice, client errors are not retried, Retry-After is honoured, errors
surface as the right exception types, and timeouts and size caps bound every call.

Timing is only ever a loose lower or upper bound; retries are made fast through the
retry_delay / retry_max_delay options.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import pier

from http_faults import Fault, FaultyFront, status
from wire_encoder import error_frame

PIER_EAUTH, PIER_EFORBIDDEN, PIER_EBUSY, PIER_ELIMIT = -17, -18, -9, -19

#: Fast retries: 1 ms base, 20 ms cap.
FAST: Dict[str, Any] = {"retry_delay": 0.001, "retry_max_delay": 0.02}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[pier.Server]:
    with pier.Server(tmp_path / "server.pier") as value:
        yield value


@pytest.fixture
def front(server: pier.Server) -> Iterator[FaultyFront]:
    value = FaultyFront(server)
    yield value
    value.close()


@pytest.fixture
def device(tmp_path: Path) -> Iterator[pier.Database]:
    with pier.Database(tmp_path / "device.pier") as db:
        yield db


def put_customers(db: pier.Database, count: int = 5) -> None:
    for index in range(count):
        db.put("customers", f"c{index}", {"name": f"customer {index}"})


def applied_once(server: pier.Server, db: pier.Database, count: int) -> None:
    """The business log holds exactly one applied line per record pushed by ``db``."""
    lines = server.log(client_id=db.client_id)
    assert sorted(line["record_id"] for line in lines) == sorted(f"c{i}" for i in range(count))
    assert {line["outcome"] for line in lines} == {"applied"}


def read_back(tmp_path: Path, front: FaultyFront) -> Dict[str, Any]:
    with pier.Database(tmp_path / "reader.pier") as reader:
        reader.sync(url=front.url)
        rows = reader.query("SELECT id, body FROM records WHERE collection = 'customers' ORDER BY id")
        return {row["id"]: row["body"] for row in rows}


def test_a_sync_posts_frames_to_v1_sync_with_the_protocol_headers(tmp_path: Path, front: FaultyFront, device: pier.Database) -> None:
    put_customers(device, 3)
    report = device.sync(url=front.url + "/", token="s3cret")
    assert report.pushed == 3 and report.applied == 3
    assert report.round_trips >= 1 and report.bytes_sent > 0 and report.bytes_received > 0
    assert set(front.authorizations) == {"Bearer s3cret"}
    assert set(front.content_types) == {"application/vnd.pier.frame"}
    assert device.state("customers", "c0") == "synced"
    assert read_back(tmp_path, front) == {f"c{i}": {"name": f"customer {i}"} for i in range(3)}


def test_no_token_sends_no_authorization_header(front: FaultyFront, device: pier.Database) -> None:
    put_customers(device, 1)
    device.sync(url=front.url)
    assert front.authorizations == [None]


def test_transient_faults_are_retried_until_the_sync_converges_and_nothing_applies_twice(
    tmp_path: Path, server: pier.Server, front: FaultyFront, device: pier.Database
) -> None:
    put_customers(device, 5)
    front.inject(
        status(503, error_frame(PIER_EBUSY, "master store unavailable"), Retry_After="0"),
        status(429, error_frame(PIER_ELIMIT, "too many syncs")),
        Fault("reset"),
        status(500),
        Fault("lost_reply"),  # the server applied the batch, the reply never arrived
        status(502, b"<html><body>Bad gateway</body></html>", Content_Type="text/html"),
        status(504),
    )
    report = device.sync(url=front.url, retries=8, **FAST)
    assert front.kinds[:7] == ["status", "status", "reset", "status", "lost_reply", "status", "status"]
    assert front.forwarded >= 2  # the lost reply, then its replay and any pull
    assert report.pushed == 5 and report.applied == 5
    assert all(device.state("customers", f"c{i}") == "synced" for i in range(5))
    applied_once(server, device, 5)
    assert read_back(tmp_path, front) == {f"c{i}": {"name": f"customer {i}"} for i in range(5)}


@pytest.mark.parametrize(
    "fault, error_type, needle",
    [
        (status(401, error_frame(PIER_EAUTH, "invalid credentials"), WWW_Authenticate="Bearer"), pier.AuthError, "invalid credentials"),
        (status(403, error_frame(PIER_EFORBIDDEN, "client id belongs to another user")), pier.ForbiddenError, "another user"),
        (status(401, b"<html>login</html>", Content_Type="text/html"), pier.AuthError, "401"),
        (status(403), pier.ForbiddenError, "403"),
        (status(413, b"too big", Content_Type="text/plain"), pier.LimitError, "413"),
        (status(400), pier.ProtocolError, "400"),
        (status(415), pier.ProtocolError, "415"),
        (status(404, b"<html>nothing here</html>", Content_Type="text/html"), pier.ProtocolError, "404"),
    ],
    ids=["401-frame", "403-frame", "401-html", "403-empty", "413", "400", "415", "404"],
)
def test_client_errors_are_not_retried_and_surface_as_their_exception(
    front: FaultyFront, device: pier.Database, fault: Fault, error_type: type, needle: str
) -> None:
    put_customers(device, 2)
    front.inject(fault)
    with pytest.raises(error_type) as caught:
        device.sync(url=front.url, retries=5, **FAST)
    assert needle in str(caught.value)
    assert len(front.requests) == 1 and front.forwarded == 0
    # Nothing was lost: the changes are still pending and the next sync delivers them.
    assert device.state("customers", "c0") == "pending"
    assert device.sync(url=front.url).applied == 2


def test_retry_after_is_waited_for(front: FaultyFront, device: pier.Database) -> None:
    put_customers(device, 1)
    front.inject(status(503, error_frame(PIER_EBUSY, "shutting down"), Retry_After="1"))
    device.sync(url=front.url, retry_delay=0.001, retry_max_delay=5)
    (first, _), (second, _) = front.requests[:2]
    assert second - first >= 0.9  # a lower bound only: the 1 s the server asked for


def test_a_long_retry_after_is_cut_to_the_max_delay(front: FaultyFront, device: pier.Database) -> None:
    put_customers(device, 1)
    front.inject(status(429, error_frame(PIER_ELIMIT, "busy"), Retry_After="3600"))
    started = time.monotonic()
    device.sync(url=front.url, retry_delay=0.001, retry_max_delay=0.05)
    assert time.monotonic() - started < 30  # not an hour
    assert front.kinds[:2] == ["status", "forward"]


def test_exhausted_retries_are_a_network_error_and_the_changes_stay_pending(
    server: pier.Server, front: FaultyFront, device: pier.Database
) -> None:
    put_customers(device, 2)
    front.inject(*[status(503, error_frame(PIER_EBUSY, "master store unavailable"))] * 3)
    with pytest.raises(pier.NetworkError) as caught:
        device.sync(url=front.url, retries=2, **FAST)
    message = str(caught.value)
    assert "503" in message and "3 attempts" in message and "master store unavailable" in message
    assert len(front.requests) == 3 and front.forwarded == 0
    assert device.state("customers", "c1") == "pending"
    device.sync(url=front.url)
    applied_once(server, device, 2)


def test_a_proxy_html_502_maps_from_the_status(front: FaultyFront, device: pier.Database) -> None:
    put_customers(device, 1)
    front.inject(*[status(502, b"<html><body>Bad gateway</body></html>", Content_Type="text/html")] * 2)
    with pytest.raises(pier.NetworkError, match="502"):
        device.sync(url=front.url, retries=1, **FAST)
    assert len(front.requests) == 2


def test_retries_zero_tries_once(front: FaultyFront, device: pier.Database) -> None:
    put_customers(device, 1)
    front.inject(status(503))
    with pytest.raises(pier.NetworkError):
        device.sync(url=front.url, retries=0)
    assert len(front.requests) == 1


def test_a_slow_server_times_out_within_the_bound_and_the_retry_is_answered_from_stored_results(
    server: pier.Server, front: FaultyFront, device: pier.Database
) -> None:
    put_customers(device, 3)
    front.inject(Fault("slow", delay=3.0), Fault("slow", delay=3.0))
    started = time.monotonic()
    with pytest.raises(pier.NetworkError, match="(?i)timeout|timed out"):
        device.sync(url=front.url, timeout=0.3, retries=1, **FAST)
    assert time.monotonic() - started < 2.5  # two 0.3 s requests, not two 3 s ones
    assert len(front.requests) == 2
    # Both slow requests reached the server; the second was a replay of the same batch.
    device.sync(url=front.url)
    applied_once(server, device, 3)


def test_a_response_over_the_cap_is_refused(front: FaultyFront, device: pier.Database) -> None:
    put_customers(device, 1)
    front.inject(Fault("huge", size=4 << 20))
    with pytest.raises(pier.ProtocolError, match="larger than"):
        device.sync(url=front.url, max_response_bytes=1 << 20, **FAST)
    assert len(front.requests) == 1
    assert device.state("customers", "c0") == "pending"


def test_a_truncated_frame_is_a_protocol_error_and_the_next_sync_recovers(
    server: pier.Server, front: FaultyFront, device: pier.Database
) -> None:
    put_customers(device, 2)
    front.inject(Fault("truncate"))
    with pytest.raises(pier.ProtocolError):
        device.sync(url=front.url, **FAST)
    assert len(front.requests) == 1
    device.sync(url=front.url)
    applied_once(server, device, 2)
    assert device.state("customers", "c1") == "synced"


def seed_customers(tmp_path: Path, server: pier.Server, count: int) -> None:
    with pier.Database(tmp_path / "seed.pier") as seed:
        for index in range(count):
            seed.put("customers", f"c{index}", {"name": f"customer {index}"})
        seed.sync(server)


def test_a_long_pull_requests_each_next_page_while_the_one_before_is_applied(
    tmp_path: Path, server: pier.Server, front: FaultyFront, device: pier.Database
) -> None:
    seed_customers(tmp_path, server, 240)
    requests_seen: List[int] = []

    def progress(p: pier.SyncProgress) -> None:
        # Runs after a page is applied, on the syncing thread. The request for the next
        # page was sent before this page was applied, so it reaches the front even while
        # this callback holds the syncing thread (a sequential client would only send it
        # after the callback returns: the wait would run out).
        deadline = time.monotonic() + 5
        while p.pulling and len(front.requests) <= p.round_trips and time.monotonic() < deadline:
            time.sleep(0.002)
        requests_seen.append(len(front.requests))

    report = device.sync(url=front.url, pull_max_records=20, progress=progress)
    assert report.pulled == 240
    assert device.count("customers") == 240
    assert report.round_trips >= 12
    # After page k (all but the last, which has nothing after it) the front had request k+1.
    assert all(seen == page + 1 for page, seen in enumerate(requests_seen[:-1], start=1))
    assert len(front.requests) == report.round_trips


def test_a_failed_request_sent_ahead_keeps_the_pages_applied_before_it(
    tmp_path: Path, server: pier.Server, front: FaultyFront, device: pier.Database
) -> None:
    seed_customers(tmp_path, server, 100)
    front.inject(Fault("forward"), Fault("forward"), Fault("status", status=400, body=error_frame(-15, "refused on purpose")))
    with pytest.raises(pier.ProtocolError):
        device.sync(url=front.url, pull_max_records=20)
    # The third request went out while page 2 was applied: pages 1 and 2 stay.
    assert len(front.requests) == 3
    assert device.count("customers") == 40
    report = device.sync(url=front.url, pull_max_records=20)
    assert report.pulled == 60
    assert device.count("customers") == 100


def test_a_closed_port_is_a_network_error(device: pier.Database) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    put_customers(device, 1)
    with pytest.raises(pier.NetworkError, match="2 attempts"):
        device.sync(url=f"http://127.0.0.1:{port}", retries=1, connect_timeout=2, **FAST)
    assert device.state("customers", "c0") == "pending"


@pytest.mark.parametrize(
    "options, error_type",
    [
        ({"url": "ftp://example.com"}, pier.InvalidError),
        ({"url": "example.com"}, pier.InvalidError),
        ({"url": 42}, TypeError),
        ({"url": "http://127.0.0.1:1", "timeout": -1}, pier.InvalidError),
        ({"url": "http://127.0.0.1:1", "timeout": "1"}, TypeError),
        ({"url": "http://127.0.0.1:1", "retries": -1}, pier.InvalidError),
        ({"url": "http://127.0.0.1:1", "token": "a\r\nX-Injected: 1"}, pier.InvalidError),
        ({"token": "t", "transport": lambda request: b""}, pier.InvalidError),
        ({"url": "http://127.0.0.1:1", "transport": lambda request: b""}, pier.InvalidError),
        ({"url": "http://127.0.0.1:1", "identity": pier.Identity("u")}, pier.InvalidError),
    ],
)
def test_bad_http_options_are_refused_before_any_request(device: pier.Database, options: Dict[str, Any], error_type: type) -> None:
    with pytest.raises(error_type):
        device.sync(**options)


def test_url_and_server_together_are_refused_by_the_library_too(server: pier.Server, device: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="exactly one"):
        device.sync(server, url="http://127.0.0.1:1")

"""A small HTTP front for an in-process ``pier.Server`` that can misbehave on purpose.

It speaks the client side's view of docs/PROTOCOL.md section 12: ``POST /v1/sync`` with a
request frame in, a response frame out, and error frames with the statuses of the table.
Each queued fault is used by one request, in order; with no fault queued the request is
forwarded to the Pier server. Used by test_sync_http.py; the real server (``pier serve``)
is built elsewhere and is not needed here.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional

import pier

FRAME_TYPE = "application/vnd.pier.frame"


@dataclass
class Fault:
    """What to do with one request instead of (or on top of) forwarding it.

    kind:
      ``forward``   forward it as if no fault were queued (lets a later request be the one)
      ``status``    answer ``status`` with ``body`` and ``headers``; the Pier server never sees it
      ``reset``     read the request, then drop the connection without an answer
      ``lost_reply`` forward it (the server applies it), then send half the reply and drop
      ``slow``      forward it, then wait ``delay`` seconds before answering
      ``truncate``  forward it and answer 200 with the response frame cut in half
      ``huge``      answer 200 with ``size`` bytes of junk
    """

    kind: str
    status: int = 200
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    size: int = 0


class FaultyFront:
    """A ThreadingHTTPServer on 127.0.0.1 in front of ``server``."""

    def __init__(self, server: pier.Server, identity: Optional[pier.Identity] = None, token: Optional[str] = None) -> None:
        self.server = server
        self.identity = identity
        self.token = token
        self.faults: List[Fault] = []
        self.lock = threading.Lock()
        #: Every POST /v1/sync that arrived: (monotonic time, fault kind or "forward").
        self.requests: List["tuple[float, str]"] = []
        self.authorizations: List[Optional[str]] = []
        self.content_types: List[Optional[str]] = []
        #: Requests the Pier server handled.
        self.forwarded = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                request = self.rfile.read(length)
                if self.path != "/v1/sync":
                    self._send(404, b"not found", "text/plain")
                    return
                with front.lock:
                    fault = front.faults.pop(0) if front.faults else None
                    front.requests.append((time.monotonic(), fault.kind if fault else "forward"))
                    front.authorizations.append(self.headers.get("Authorization"))
                    front.content_types.append(self.headers.get("Content-Type"))
                if fault is None or fault.kind == "forward":
                    self._send(200, front._forward(request))
                elif fault.kind == "status":
                    self._send(fault.status, fault.body, fault.headers.get("Content-Type", FRAME_TYPE), fault.headers)
                elif fault.kind == "reset":
                    self._drop()
                elif fault.kind == "lost_reply":
                    response = front._forward(request)
                    self.send_response(200)
                    self.send_header("Content-Type", FRAME_TYPE)
                    self.send_header("Content-Length", str(len(response)))
                    self.end_headers()
                    self.wfile.write(response[: len(response) // 2])
                    self.wfile.flush()
                    self._drop()
                elif fault.kind == "slow":
                    response = front._forward(request)
                    time.sleep(fault.delay)
                    try:
                        self._send(200, response)
                    except OSError:
                        pass  # the client gave up, as it should
                elif fault.kind == "truncate":
                    response = front._forward(request)
                    self._send(200, response[: len(response) // 2])
                elif fault.kind == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", FRAME_TYPE)
                    self.send_header("Content-Length", str(fault.size))
                    self.end_headers()
                    chunk = b"\0" * 65536
                    try:
                        left = fault.size
                        while left > 0:
                            self.wfile.write(chunk[: min(left, len(chunk))])
                            left -= len(chunk)
                    except OSError:
                        pass  # the client stopped reading at its cap
                    self.close_connection = True
                else:  # pragma: no cover - a typo in a test
                    raise AssertionError(f"unknown fault {fault.kind}")

            def _send(self, status: int, body: bytes, content_type: str = FRAME_TYPE,
                      headers: Optional[Dict[str, str]] = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    if name != "Content-Type":
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _drop(self) -> None:
                # An abortive close (RST), like a proxy or a crashed server.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="pier-fault-front", daemon=True)
        self.thread.start()

    def _forward(self, request: bytes) -> bytes:
        response = self.server.handle(request, self.identity)
        with self.lock:
            self.forwarded += 1
        return response

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    @property
    def kinds(self) -> List[str]:
        with self.lock:
            return [kind for _, kind in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def status(code: int, body: bytes = b"", **headers: str) -> Fault:
    return Fault("status", status=code, body=body, headers={name.replace("_", "-"): value for name, value in headers.items()})

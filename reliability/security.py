#!/usr/bin/env python3
"""Security negatives of the reliability harness (issue 7, part 7), against real ``pier serve``.

What is tested, and how:

1. **Credentials.** A server configured with an HS256 secret, an RS256 and an ES256 public
   key (made with the ``openssl`` command), an issuer, an audience and API keys receives
   one valid request frame (captured from a real ``pier.Database`` sync) with bad
   credentials: ``alg: none`` with and without a signature, algorithm confusion (HS256
   tokens whose HMAC secret is the server's RS256 or ES256 public key in every plausible
   byte form), tokens relabelled to another algorithm, wrong or missing ``aud`` and
   ``iss``, expired, ``nbf`` in the future, no ``exp``, no ``sub``, an unknown ``kid``
   (signed by the configured key and by another one), bad and truncated signatures,
   tokens signed by another key of the right algorithm (also with that key embedded as a
   ``jwk`` header or named by ``jku``), a tampered payload, a DER-encoded ES256
   signature, unknown API keys, other schemes and garbage. Each must be answered 401
   with an error frame (PIER_EAUTH, decoded by ``bindings/python/tests/wire_decoder.py``)
   and ``WWW-Authenticate: Bearer``; the same frame with a valid token of each algorithm
   and a valid API key is answered 200 (the controls). A second server with only the
   public keys (no HS256) refuses the algorithm-confusion tokens as well. The admin
   endpoints answer 200 to the admin key, 403 to non-admin credentials, 401 to bad ones.
2. **Scope isolation.** An admin seeds scopes "north" and "south" (shared collections,
   one collection per scope, updates and tombstones interleaved). User "ana" (read and
   write "north", as HS256/RS256/ES256 JWTs and an API key) then makes at least
   ``--requests`` random HTTP requests: pulls from random cursors with random collection filters and page
   sizes (raw frames), pushes of upserts, patches and deletes into south records or with
   scope "south" (raw frames), ``pier.Database`` syncs on fresh and reused stores with the
   built-in HTTP transport and with a host transport that first posts a copy of the first
   request with a random cursor and collection filter, and requests with another user's
   client id. Every
   response is decoded and every store inspected: no record of scope "south" (nor any
   south body) may reach ana, every write into south is refused (``rejected`` /
   ``forbidden`` on the wire, ``rejected`` state in the store, a ``rejected`` row in the
   business log), and the server's south records are unchanged at the end. Fresh stores
   of ana and of "bea" (south) then hold exactly their own scope (the filter is not too
   wide, nor too narrow).
3. **Oversize.** With ``http.max_request_bytes`` = 64 KiB, a 64 MiB body is answered 413
   (error frame PIER_ELIMIT) with ``Content-Length`` and chunked, before the client has
   sent it all; a body of exactly the limit is read, one byte more is 413; an 8 MiB header
   block is cut off.
4. **Slow drip.** With ``http.idle_timeout_seconds`` = 1, request headers dripped one byte
   every 0.1 s are cut off within 3 s. With ``http.request_timeout_seconds`` = 2 (after
   which a body must average ``request_min_bytes_per_second``, 1024 by default), a body
   dripped one byte every 0.2 s (each byte resets the idle timer) is answered 408 with an
   error frame, or the connection closed, within 4 s.

Repeat a run: ``python3 reliability/security.py --seed S [--requests N] [--work DIR] [--json OUT]``
(1,000 requests by default, in CI and in full runs). Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import random
import select
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from common import API_KEY, ROOT, Serve, write_result

sys.path.insert(0, str(ROOT / "bindings" / "python" / "tests"))

import pier  # noqa: E402
from wire_decoder import WireFormatError, decode_frame  # noqa: E402
from wire_encoder import encode_request  # noqa: E402

FRAME_TYPE = "application/vnd.pier.frame"
PIER_ENETWORK, PIER_EAUTH, PIER_EFORBIDDEN, PIER_ELIMIT = -16, -17, -18, -19
ISSUER = "https://auth.reliability.example"
AUDIENCE = "pier-reliability"

#: Collections both scopes write, and one of each scope alone.
SHARED = ["jobs", "notes", "sites"]
NORTH_ONLY = "plans"
SOUTH_ONLY = "vault"
COLLECTIONS = SHARED + [NORTH_ONLY, SOUTH_ONLY]
#: Every south body carries this marker; it must never appear in anything ana receives.
SOUTH_MARK = "south-secret-"
#: API keys of the two users (at least 16 characters).
ANA_KEY = "pk_reliability_ana_north_only"
BEA_KEY = "pk_reliability_bea_south_only"
#: The user of part 1's requests, and an API key of hers (the control of the API key cases).
PROBE = "probe"
PROBE_KEY = "pk_reliability_probe_north"

MAX_REQUEST_BYTES = 64 << 10
IDLE_TIMEOUT = 1
REQUEST_TIMEOUT = 2
HEADER_DRIP_BOUND = 3.0
BODY_DRIP_BOUND = 4.0


# -- keys and tokens ------------------------------------------------------------------


def openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], capture_output=True, check=True, timeout=120).stdout


@dataclass
class KeyPair:
    """A private key file and its public key (SubjectPublicKeyInfo, PEM), also in a file."""

    algorithm: str
    private: Path
    public: Path
    public_pem: bytes


def make_key(folder: Path, name: str, algorithm: str) -> KeyPair:
    private = folder / f"{name}.pem"
    if algorithm == "RS256":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(private))
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(private))
    public = folder / f"{name}.pub.pem"
    public.write_bytes(openssl("pkey", "-in", str(private), "-pubout"))
    return KeyPair(algorithm, private, public, public.read_bytes())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def der_signature_to_raw(der: bytes) -> bytes:
    """An ECDSA-Sig-Value (DER SEQUENCE of r and s) as JOSE's 64-byte r || s."""
    assert der[0] == 0x30 and der[2] == 0x02, "not a DER ECDSA signature"
    r_length = der[3]
    r = der[4 : 4 + r_length]
    assert der[4 + r_length] == 0x02
    s = der[6 + r_length : 6 + r_length + der[5 + r_length]]
    return int.from_bytes(r, "big").to_bytes(32, "big") + int.from_bytes(s, "big").to_bytes(32, "big")


@dataclass
class Keys:
    """The server's keys and look-alikes of the same algorithms that it does not know."""

    secret: bytes
    other_secret: bytes
    rsa: KeyPair
    other_rsa: KeyPair
    ec: KeyPair
    other_ec: KeyPair

    @classmethod
    def make(cls, folder: Path, rng: random.Random) -> "Keys":
        folder.mkdir(parents=True, exist_ok=True)
        secret = rng.randbytes(48).hex().encode("ascii")
        (folder / "hs256.secret").write_bytes(secret + b"\n")
        return cls(
            secret=secret,
            other_secret=rng.randbytes(48).hex().encode("ascii"),
            rsa=make_key(folder, "rs256", "RS256"),
            other_rsa=make_key(folder, "rs256-other", "RS256"),
            ec=make_key(folder, "es256", "ES256"),
            other_ec=make_key(folder, "es256-other", "ES256"),
        )


def signature(algorithm: str, key: Any, signing_input: bytes, der: bool = False) -> bytes:
    """HS256 with ``key`` as the HMAC secret (bytes); RS256/ES256 with a KeyPair's private key."""
    if algorithm == "HS256":
        return hmac.new(key, signing_input, hashlib.sha256).digest()
    with tempfile.NamedTemporaryFile() as data:
        data.write(signing_input)
        data.flush()
        signed = openssl("dgst", "-sha256", "-sign", str(key.private), data.name)
    return signed if algorithm == "RS256" or der else der_signature_to_raw(signed)


def encode_token(header: Dict[str, Any], claims: Dict[str, Any], sign: Optional[Callable[[bytes], bytes]]) -> str:
    """``header.claims.signature``; no ``sign`` leaves the signature part empty."""
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode("ascii")
    return signing_input.decode("ascii") + "." + (b64url(sign(signing_input)) if sign else "")


@dataclass
class Minter:
    """Makes tokens with the server's keys (or others) and claims valid for it unless changed."""

    keys: Keys

    def claims(self, subject: str, read: List[str], write: List[str], **changes: Any) -> Dict[str, Any]:
        """Valid claims; a change to ``None`` removes that claim."""
        now = int(time.time())
        claims: Dict[str, Any] = {
            "sub": subject, "iat": now, "exp": now + 3600, "iss": ISSUER, "aud": [AUDIENCE],
            "read_scopes": read, "write_scopes": write,
        }
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def key(self, algorithm: str) -> Any:
        return {"HS256": self.keys.secret, "RS256": self.keys.rsa, "ES256": self.keys.ec}[algorithm]

    def token(self, algorithm: str, claims: Dict[str, Any], key: Any = None, header: Optional[Dict[str, Any]] = None) -> str:
        """A token signed with ``algorithm`` (with the server's key unless ``key``)."""
        chosen = self.key(algorithm) if key is None else key
        return encode_token(header or {"alg": algorithm, "typ": "JWT"}, claims, lambda data: signature(algorithm, chosen, data))


def convert_public_key(public_pem: bytes, *extra: str) -> bytes:
    """A public key converted by ``openssl pkey`` (or ``openssl rsa`` with ``extra``); DER by default."""
    with tempfile.NamedTemporaryFile() as public:
        public.write(public_pem)
        public.flush()
        if extra:
            return openssl("rsa", "-pubin", "-in", public.name, *extra)
        return openssl("pkey", "-pubin", "-in", public.name, "-outform", "DER")


def pem_variants(pair: KeyPair) -> Dict[str, bytes]:
    """Every byte form of a public key a confused verifier might use as an HMAC secret."""
    pem = pair.public_pem
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    variants = {
        "pem": pem,
        "pem without final newline": pem.rstrip(b"\n"),
        "pem with two final newlines": pem + b"\n",
        "pem with CRLF": pem.replace(b"\n", b"\r\n"),
        "pem base64 lines only": body,
        "der": convert_public_key(pem),
    }
    if pair.algorithm == "RS256":
        pkcs1 = convert_public_key(pem, "-RSAPublicKey_out")
        variants["pkcs1 pem"] = pkcs1
        variants["pkcs1 pem without final newline"] = pkcs1.rstrip(b"\n")
        variants["pkcs1 der"] = convert_public_key(pem, "-RSAPublicKey_out", "-outform", "DER")
    return variants


def credential_cases(minter: Minter, probe: str) -> List[Tuple[str, Optional[str]]]:
    """(case, Authorization header or None) for every credential that must be refused."""
    keys = minter.keys
    good = minter.claims(probe, ["north"], ["north"])
    tokens = {algorithm: minter.token(algorithm, good) for algorithm in ("HS256", "RS256", "ES256")}
    _, payload, hs_signature = tokens["HS256"].split(".")
    cases: List[Tuple[str, Optional[str]]] = []

    def add(name: str, token: Optional[str]) -> None:
        cases.append((name, None if token is None else f"Bearer {token}"))

    def claims(**changes: Any) -> Dict[str, Any]:
        return minter.claims(probe, ["north"], ["north"], **changes)

    def signed_as(algorithm: str, key: Any, der: bool = False) -> Callable[[bytes], bytes]:
        return lambda data: signature(algorithm, key, data, der)

    for alg in ("none", "None", "NONE", "nOnE"):
        add(f"alg {alg}, no signature", encode_token({"alg": alg, "typ": "JWT"}, good, None))
    add("alg none, with an HMAC of the server's secret", encode_token({"alg": "none"}, good, signed_as("HS256", keys.secret)))
    add("alg none, with the valid token's signature part", b64url(b'{"alg":"none"}') + f".{payload}.{hs_signature}")
    add("no alg in the header", encode_token({"typ": "JWT"}, good, signed_as("HS256", keys.secret)))
    add("header not JSON", f"{b64url(b'not json')}.{payload}.{hs_signature}")
    for pair in (keys.rsa, keys.ec):
        for variant, secret in pem_variants(pair).items():
            add(f"alg confusion: HS256 keyed with the {pair.algorithm} public key ({variant})",
                minter.token("HS256", good, key=secret))
    add("RS256-signed token relabelled ES256", encode_token({"alg": "ES256"}, good, signed_as("RS256", keys.rsa)))
    add("ES256-signed token relabelled RS256", encode_token({"alg": "RS256"}, good, signed_as("ES256", keys.ec)))
    add("HS256 token relabelled HS384", encode_token({"alg": "HS384"}, good, signed_as("HS256", keys.secret)))
    add("HS256 token relabelled lower-case hs256", encode_token({"alg": "hs256"}, good, signed_as("HS256", keys.secret)))
    now = int(time.time())
    for algorithm in ("HS256", "RS256", "ES256"):
        add(f"{algorithm}: wrong aud", minter.token(algorithm, claims(aud=["someone-else"])))
        add(f"{algorithm}: wrong iss", minter.token(algorithm, claims(iss="https://evil.example")))
        add(f"{algorithm}: expired", minter.token(algorithm, claims(exp=now - 120)))
        add(f"{algorithm}: nbf in the future", minter.token(algorithm, claims(nbf=now + 600)))
    add("HS256: aud that only starts with the audience", minter.token("HS256", claims(aud=[AUDIENCE + "x"])))
    add("HS256: aud as a wrong string", minter.token("HS256", claims(aud="someone-else")))
    add("HS256: no aud", minter.token("HS256", claims(aud=None)))
    add("HS256: no iss", minter.token("HS256", claims(iss=None)))
    add("HS256: no exp", minter.token("HS256", claims(exp=None)))
    add("HS256: exp not a number", minter.token("HS256", claims(exp="never")))
    add("HS256: no sub", minter.token("HS256", claims(sub=None)))
    add("HS256: empty sub", minter.token("HS256", claims(sub="")))
    for algorithm in ("HS256", "RS256", "ES256"):
        add(f"{algorithm}: unknown kid, signed with the configured key",
            minter.token(algorithm, good, header={"alg": algorithm, "typ": "JWT", "kid": "no-such-key"}))
    add("HS256: unknown kid, signed with another secret",
        minter.token("HS256", good, key=keys.other_secret, header={"alg": "HS256", "kid": "no-such-key"}))
    add("HS256: signed with another secret", minter.token("HS256", good, key=keys.other_secret))
    add("RS256: signed with another key", minter.token("RS256", good, key=keys.other_rsa))
    add("ES256: signed with another key", minter.token("ES256", good, key=keys.other_ec))
    point = convert_public_key(keys.other_ec.public_pem)[-64:]
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url(point[:32]), "y": b64url(point[32:])}
    add("ES256: signed with another key that the header embeds as jwk",
        minter.token("ES256", good, key=keys.other_ec, header={"alg": "ES256", "jwk": jwk}))
    add("ES256: signed with another key, header jku pointing elsewhere",
        minter.token("ES256", good, key=keys.other_ec, header={"alg": "ES256", "jku": "http://127.0.0.1:1/jwks.json"}))
    add("ES256: DER-encoded signature", encode_token({"alg": "ES256"}, good, signed_as("ES256", keys.ec, der=True)))
    escalated = b64url(json.dumps(dict(good, read_scopes=["*"], write_scopes=["*"], admin=True)).encode())
    for algorithm, token in tokens.items():
        header, body, sig = token.split(".")
        flipped = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        flipped[len(flipped) // 2] ^= 0x01
        add(f"{algorithm}: one signature bit flipped", f"{header}.{body}.{b64url(bytes(flipped))}")
        add(f"{algorithm}: signature truncated by 4 characters", f"{header}.{body}.{sig[:-4]}")
        add(f"{algorithm}: signature truncated to half", f"{header}.{body}.{sig[: len(sig) // 2]}")
        add(f"{algorithm}: empty signature", f"{header}.{body}.")
        add(f"{algorithm}: payload changed after signing (scopes widened)", f"{header}.{escalated}.{sig}")
    add("unknown API key", PROBE_KEY + "x")
    add("API key with one character changed", PROBE_KEY[:-1] + chr(ord(PROBE_KEY[-1]) ^ 1))
    add("API key prefix", PROBE_KEY[:-3])
    add("garbage", base64.b64encode(random.Random(7).randbytes(40)).decode())
    add("garbage with three dot-separated parts", "a.b.c")
    add("empty credential", "")
    add("no Authorization header", None)
    cases.append(("Basic scheme with a valid API key", "Basic " + base64.b64encode(f"{probe}:{PROBE_KEY}".encode()).decode()))
    cases.append(("valid HS256 token without the Bearer scheme", tokens["HS256"]))
    cases.append(("valid HS256 token after the wrong scheme", f"Token {tokens['HS256']}"))
    return cases


def confusion_cases(cases: List[Tuple[str, Optional[str]]]) -> List[Tuple[str, Optional[str]]]:
    """The cases a server without an HS256 secret must refuse too (no secret to fall back on)."""
    return [case for case in cases if case[0].startswith(("alg ", "HS256 token relabelled"))]


# -- frames and HTTP ------------------------------------------------------------------


@dataclass
class Answer:
    """An HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: Dict[str, str]
    body: bytes

    def message(self) -> Optional[Dict[str, Any]]:
        """The decoded frame of the body, or None if it is not a frame."""
        try:
            message: Dict[str, Any] = decode_frame(self.body)["message"]
        except (WireFormatError, IndexError, struct.error):
            return None
        return message

    def error_code(self) -> Optional[int]:
        """The code of an error frame body, else None."""
        message = self.message()
        return int(message["code"]) if message and message["type"] == "error" else None


def post(port: int, frame: bytes, authorization: Optional[str], timeout: float = 30.0) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": FRAME_TYPE}
        if authorization is not None:
            headers["Authorization"] = authorization
        connection.request("POST", "/v1/sync", body=frame, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def capture_frame(folder: Path, port: int, authorization: str) -> Tuple[bytes, Answer]:
    """The first request frame of a real client's sync, and the server's answer to it."""
    captured: List[Tuple[bytes, Answer]] = []

    def transport(request: bytes) -> bytes:
        answer = post(port, request, authorization)
        captured.append((request, answer))
        return answer.body

    with pier.Database(folder / "capture.pier") as db:
        db.sync(transport=transport)
    return captured[0]


# -- part 1: credentials --------------------------------------------------------------


@dataclass
class Report:
    """The violations found so far; each is printed as it is found."""

    violations: List[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.violations.append(text)
        print(f"VIOLATION: {text}", flush=True)


def check_refused(
    report: Report, server: str, port: int, frame: bytes, cases: List[Tuple[str, Optional[str]]]
) -> List[Dict[str, Any]]:
    """Sends ``frame`` with each credential: each must be a 401 with a PIER_EAUTH frame and a Bearer challenge."""
    out = []
    for name, authorization in cases:
        answer = post(port, frame, authorization)
        code = answer.error_code()
        challenge = answer.headers.get("www-authenticate", "")
        ok = answer.status == 401 and code == PIER_EAUTH and challenge.lower().startswith("bearer")
        out.append({"server": server, "case": name, "status": answer.status, "error_code": code, "refused": ok})
        if not ok:
            what = "ACCEPTED" if answer.status == 200 else "answered wrongly"
            report.fail(f"{server}: credential case {name!r} {what}: status {answer.status}, error code {code}, "
                        f"WWW-Authenticate {challenge!r}, credential {authorization!r}")
    return out


def credentials_part(report: Report, main: Serve, asym: Serve, minter: Minter, work: Path) -> Dict[str, Any]:
    good = minter.claims(PROBE, ["north"], ["north"])
    frame, first = capture_frame(work, main.port, f"Bearer {minter.token('HS256', good)}")
    decoded = decode_frame(frame)["message"]
    if first.status != 200 or decoded["type"] != "sync_request":
        report.fail(f"the captured request was not answered 200: {first.status} {first.message()}")
    again = encode_request(decoded["client_id"], decoded["batch_seq"], decoded["pull"], decoded["changes"])
    if decode_frame(again)["message"] != decoded:
        report.fail("the harness's frame encoder does not round-trip the captured request")
    controls = []
    valid = [(f"valid {algorithm} token", f"Bearer {minter.token(algorithm, good)}") for algorithm in ("HS256", "RS256", "ES256")]
    valid += [(f"valid {algorithm} token naming the configured kid",
               f"Bearer {minter.token(algorithm, good, header={'alg': algorithm, 'typ': 'JWT', 'kid': kid})}")
              for algorithm, kid in (("HS256", "hs-1"), ("RS256", "rsa-1"), ("ES256", "ec-1"))]
    valid.append(("valid API key", f"Bearer {PROBE_KEY}"))
    asymmetric = [(name, value) for name, value in valid if "HS256" not in name]
    for server, port, credentials in (("main", main.port, valid), ("asymmetric-only", asym.port, asymmetric)):
        for name, authorization in credentials:
            answer = post(port, frame, authorization)
            message = answer.message()
            accepted = answer.status == 200 and message is not None and message["type"] == "sync_response"
            controls.append({"server": server, "case": name, "status": answer.status, "accepted": accepted})
            if not accepted:
                report.fail(f"{server}: control {name!r} was not accepted: {answer.status} {message}")
    cases = credential_cases(minter, PROBE)
    results = check_refused(report, "main", main.port, frame, cases)
    results += check_refused(report, "asymmetric-only", asym.port, frame, confusion_cases(cases))
    tampered = dict(cases)["HS256: payload changed after signing (scopes widened)"]
    admin = admin_checks(report, main.port, [
        ("harness admin API key", f"Bearer {API_KEY}", 200),
        ("non-admin token", f"Bearer {minter.token('HS256', good)}", 403),
        ("non-admin API key", f"Bearer {PROBE_KEY}", 403),
        ("token claiming admin, payload changed after signing", tampered, 401),
        ("no Authorization header", None, 401),
    ])
    refused = sum(1 for r in results if r["refused"])
    accepted = sum(control["accepted"] for control in controls)
    print(f"credentials: {refused}/{len(results)} bad credentials refused, {accepted}/{len(controls)} controls accepted", flush=True)
    return {"controls": controls, "cases": results, "refused": refused, "total": len(results),
            "accepted": [r["case"] for r in results if r["status"] == 200], "admin_endpoints": admin}


def admin_checks(report: Report, port: int, credentials: List[Tuple[str, Optional[str], int]]) -> List[Dict[str, Any]]:
    """The admin endpoints answer each credential with the expected status (200, 403 or 401)."""
    out = []
    for path in ("/v1/admin/log", "/v1/admin/conflicts"):
        for name, authorization, expected in credentials:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("GET", path, headers={"Authorization": authorization} if authorization else {})
                response = connection.getresponse()
                response.read()
                status = response.status
            finally:
                connection.close()
            out.append({"endpoint": path, "case": name, "status": status, "expected": expected})
            if status != expected:
                report.fail(f"{path} with {name}: status {status}, expected {expected}")
    return out


# -- part 2: scope isolation ----------------------------------------------------------


@dataclass
class MasterRow:
    """One record of the master store, scope included (common.server_records has no scope)."""

    collection: str
    id: str
    scope: str
    version: int
    deleted: bool
    body: Optional[str]


def master_rows(master: Path) -> Dict[Tuple[str, str], MasterRow]:
    connection = sqlite3.connect(f"file:{master}?mode=ro", uri=True, timeout=30)
    try:
        return {
            (c, i): MasterRow(c, i, s, v, bool(d), b)
            for c, i, s, v, d, b in connection.execute("SELECT collection, id, scope, version, deleted, body FROM records")
        }
    finally:
        connection.close()


def log_rows(master: Path, user: str) -> List[Tuple[str, str, str, str, str]]:
    """(collection, record id, op, outcome, detail) of a user's business-log rows."""
    connection = sqlite3.connect(f"file:{master}?mode=ro", uri=True, timeout=30)
    try:
        return list(connection.execute(
            "SELECT collection, record_id, op, outcome, detail FROM business_log WHERE user = ?", (user,)))
    finally:
        connection.close()


def seed_body(scope: str, rng: random.Random) -> Dict[str, Any]:
    """A body of ``scope``; south bodies carry SOUTH_MARK."""
    if scope == "south":
        return {"owner": "south", "secret": SOUTH_MARK + rng.randbytes(12).hex(), "n": rng.randrange(1000)}
    return {"owner": "north", "n": rng.randrange(1000)}


def seed(folder: Path, url: str, rng: random.Random) -> None:
    """Both scopes, interleaved in version order, with updates and tombstones of each."""
    with pier.Database(folder / "seed.pier") as db:
        made: Dict[str, List[Tuple[str, str]]] = {"north": [], "south": []}
        for n in range(30):
            for scope in ("north", "south"):
                own = NORTH_ONLY if scope == "north" else SOUTH_ONLY
                for collection in SHARED + ([own] if n < 20 else []):
                    record = pier.new_id() if rng.random() < 0.8 else f"{scope[0]}-{collection}-{n:03d}"
                    db.put(collection, record, seed_body(scope, rng), scope=scope)
                    made[scope].append((collection, record))
        db.sync(url=url, token=API_KEY)
        for scope in ("north", "south"):
            for collection, record in rng.sample(made[scope], 12):
                db.put(collection, record, seed_body(scope, rng), scope=scope)
            for collection, record in rng.sample(made[scope], 8):
                db.delete(collection, record)
        db.sync(url=url, token=API_KEY)


@dataclass
class Isolation:
    """State and tallies of ana's random requests."""

    report: Report
    port: int
    url: str
    rng: random.Random
    folder: Path
    credentials: List[Tuple[str, str]]
    south: Dict[Tuple[str, str], MasterRow]
    bea_client: str
    requests: int = 0
    kinds: Dict[str, int] = field(default_factory=dict)
    records_pulled: int = 0
    other_scope_records: int = 0
    south_writes_sent: int = 0
    south_writes_refused: int = 0
    north_writes_applied: int = 0
    foreign_client_refused: int = 0
    raw_client: str = field(default_factory=lambda: str(uuid.uuid4()))
    raw_batch: int = 0
    stores: List[Path] = field(default_factory=list)
    #: (collection, id) ana wrote into south, for recognising her own rejected copies.
    own_south_writes: Set[Tuple[str, str]] = field(default_factory=set)

    def bearer(self) -> str:
        """One of ana's credentials, as an Authorization header value."""
        return self.rng.choice(self.credentials)[1]

    def inspect(self, message: Dict[str, Any], where: str) -> None:
        """No south record, id or body in a response ana received."""
        for record in message["records"]:
            self.records_pulled += 1
            if record["scope"] != "north" or (record["collection"], record["id"]) in self.south:
                self.other_scope_records += 1
                self.report.fail(f"{where}: ana received {record['collection']}/{record['id']} of scope {record['scope']!r}")
        if SOUTH_MARK in json.dumps(message):
            self.report.fail(f"{where}: a south body reached ana: {json.dumps(message)[:500]}")

    def send(self, frame: bytes, where: str) -> Optional[Dict[str, Any]]:
        """Posts a frame as ana; a valid request must be answered 200 with a clean response."""
        self.requests += 1
        answer = post(self.port, frame, self.bearer())
        message = answer.message()
        if answer.status != 200 or message is None or message["type"] != "sync_response":
            self.report.fail(f"{where}: ana's request was answered {answer.status}: {message}")
            return None
        self.inspect(message, where)
        return message

    def random_pull(self, top: int) -> Dict[str, Any]:
        """A pull from a random cursor (``top`` is about the newest version) with a random filter and page."""
        rng = self.rng
        cursor = rng.choice([0, 0, rng.randint(0, top), top, -rng.randint(1, 1 << 40), 1 << 62,
                             rng.choice([row.version for row in self.south.values()]) - 1])
        collections = rng.choice([[], [], [SOUTH_ONLY], rng.sample(COLLECTIONS + ["unknown"], rng.randint(1, 4))])
        return {"cursor": cursor, "max_records": rng.choice([0, 1, 7, 50, 1000]),
                "max_bytes": rng.choice([0, 1, 300, 100000]), "collections": collections}

    # -- the request kinds --

    def raw_pull(self, top: int) -> None:
        """A pull-only frame, from ana's raw client id or a new one."""
        client = self.raw_client if self.rng.random() < 0.5 else str(uuid.uuid4())
        self.send(encode_request(client, 0, self.random_pull(top), []), "raw pull")

    def raw_push(self, top: int) -> None:
        """Upserts, patches and deletes of south records (with either scope), new south records, and
        north records as a control; each south write must come back rejected/forbidden, version 0, no body."""
        rng = self.rng
        changes: List[Dict[str, Any]] = []
        forbidden: List[bool] = []
        now = int(time.time() * 1000) << 16
        for k in range(rng.randint(1, 4)):
            target = rng.random()
            change: Dict[str, Any] = {"hlc": now + k, "changed_fields": [], "body": json.dumps({"by": "ana", "k": k})}
            if target < 0.6:
                row = rng.choice(list(self.south.values()))
                op = rng.choice(["upsert", "patch", "delete"])
                change.update(collection=row.collection, id=row.id, op=op, scope=rng.choice(["south", "north"]),
                              base_version=rng.choice([row.version, row.version, 0, row.version + 1]))
                if op == "patch":
                    change["changed_fields"] = ["by", "k"]
                if op == "delete":
                    change["body"] = None
            elif target < 0.85:
                change.update(collection=rng.choice(COLLECTIONS), id=pier.new_id(), op="upsert", scope="south", base_version=0)
            else:
                change.update(collection=rng.choice(SHARED + [NORTH_ONLY]), id=pier.new_id(), op="upsert", scope="north",
                              base_version=0)
            forbidden.append(change["scope"] == "south" or (change["collection"], change["id"]) in self.south)
            changes.append(change)
        self.raw_batch += 1
        pull = self.random_pull(top) if rng.random() < 0.5 else None
        message = self.send(encode_request(self.raw_client, self.raw_batch, pull, changes), "raw push")
        if message is None:
            return
        results = {result["index"]: result for result in message["results"]}
        for index, (change, refused) in enumerate(zip(changes, forbidden)):
            result = results.get(index)
            if refused:
                self.south_writes_sent += 1
                if result and result["outcome"] == "rejected" and result["reason"] == "forbidden" \
                        and result["version"] == 0 and result["body"] is None:
                    self.south_writes_refused += 1
                else:
                    self.report.fail(f"raw push: ana's {change['op']} of {change['collection']}/{change['id']} "
                                     f"(scope {change['scope']}) into south was answered {result}")
            elif result and result["outcome"] == "applied":
                self.north_writes_applied += 1
            else:
                self.report.fail(f"raw push: ana's own north write {change['collection']}/{change['id']} was answered {result}")

    def foreign_client(self, top: int) -> None:
        """bea's client id in ana's request: 403, and nothing applied."""
        self.requests += 1
        change = {"collection": SHARED[0], "id": pier.new_id(), "op": "upsert", "scope": "north", "base_version": 0,
                  "hlc": int(time.time() * 1000) << 16, "changed_fields": [], "body": '{"by":"ana"}'}
        push = self.rng.random() < 0.5
        frame = encode_request(self.bea_client, 10**6 + self.requests, self.random_pull(top), [change] if push else [])
        answer = post(self.port, frame, self.bearer())
        if answer.status == 403 and answer.error_code() == PIER_EFORBIDDEN:
            self.foreign_client_refused += 1
        else:
            self.report.fail(f"ana using bea's client id was answered {answer.status} {answer.message()}")

    def database_sync(self, top: int, host_transport: bool) -> None:
        """A ``pier.Database`` sync of a fresh or reused store, after 0-3 local writes (south or north)."""
        rng = self.rng
        if not self.stores or rng.random() < 0.25:
            path = self.folder / f"ana-{len(self.stores):04d}.pier"
            self.stores.append(path)
        else:
            path = rng.choice(self.stores[-6:])
        #: The state each record ana writes must reach (a record written twice is pushed once).
        expected: Dict[Tuple[str, str], str] = {}
        with pier.Database(path) as db:
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                kind = rng.random()
                if kind < 0.5:
                    row = rng.choice(list(self.south.values()))
                    collection, record, scope = row.collection, row.id, rng.choice(["north", "south"])
                elif kind < 0.75:
                    collection, record, scope = rng.choice(COLLECTIONS), pier.new_id(), "south"
                else:
                    collection, record, scope = rng.choice(SHARED + [NORTH_ONLY]), pier.new_id(), "north"
                db.put(collection, record, {"by": "ana", "n": rng.randrange(1000)}, scope=scope)
                refused = scope == "south" or (collection, record) in self.south
                if refused:
                    self.own_south_writes.add((collection, record))
                expected[(collection, record)] = "rejected" if refused else "synced"
            page = rng.choice([None, 5, 40])
            where = f"sync of {path.name} ({'host transport' if host_transport else 'libcurl'})"
            try:
                if host_transport:
                    db.sync(transport=self.rewriting_transport(top, where), pull_max_records=page)
                else:
                    token = self.bearer().split(" ", 1)[1]
                    sync = db.sync(url=self.url, token=token, pull_max_records=page, retries=0)
                    self.requests += sync.round_trips
                    self.records_pulled += sync.pulled
            except pier.PierError as error:
                self.report.fail(f"{where}: {type(error).__name__}: {error}")
                return
            for (collection, record), state in expected.items():
                actual = db.state(collection, record)
                if state == "rejected":
                    self.south_writes_sent += 1
                    self.south_writes_refused += actual == "rejected"
                elif actual == "synced":
                    self.north_writes_applied += 1
                if actual != state:
                    self.report.fail(f"{where}: ana's write of {collection}/{record} is {actual!r}, expected {state!r}")
            self.check_store(db, where)

    def rewriting_transport(self, top: int, where: str) -> Callable[[bytes], bytes]:
        """Posts as ana. Before the first request of the sync goes out, a copy of it with a
        random cursor and collection filter is posted first (a probe; its batch, if any, is
        applied then, so the real request that follows is a replay). The store gets the answer
        to its own request: it refuses an answer to a rewritten one (the cursor does not match)."""
        calls = 0

        def exchange(request: bytes) -> bytes:
            self.requests += 1
            answer = post(self.port, request, self.bearer())
            message = answer.message()
            if answer.status != 200 or message is None or message["type"] != "sync_response":
                self.report.fail(f"{where}: answered {answer.status}: {message}")
            else:
                self.inspect(message, where)
            return answer.body

        def transport(request: bytes) -> bytes:
            nonlocal calls
            calls += 1
            if calls == 1:
                message = decode_frame(request)["message"]
                exchange(encode_request(message["client_id"], message["batch_seq"], self.random_pull(top), message["changes"]))
            return exchange(request)

        return transport

    def check_store(self, db: pier.Database, where: str) -> None:
        """Everything ana's store holds is north, or her own refused write; no south record or tombstone."""
        live = set()
        for collection in COLLECTIONS:
            for record, content in db.iter(collection, page_size=500):
                live.add((collection, record))
                meta = db.metadata(collection, record)
                if meta["scope"] != "north" or (collection, record) in self.south:
                    self.own_rejected(db, collection, record, meta, where)
                elif SOUTH_MARK in json.dumps(content):
                    self.report.fail(f"{where}: north record {collection}/{record} holds a south body")
        for collection, record in set(self.south) - live:
            try:
                meta = db.metadata(collection, record)
            except pier.NotFoundError:
                continue
            self.own_rejected(db, collection, record, meta, where)

    def own_rejected(self, db: pier.Database, collection: str, record: str, meta: Dict[str, Any], where: str) -> None:
        """A non-north record in ana's store must be her own write, refused, with no south body."""
        state = db.state(collection, record)
        mine = (collection, record) in self.own_south_writes
        if not mine or state != "rejected" or meta.get("is_from_server") or SOUTH_MARK in json.dumps(meta):
            self.other_scope_records += 1
            self.report.fail(f"{where}: ana's store holds {collection}/{record} (scope {meta['scope']!r}, state {state!r}, "
                             f"written by ana: {mine}): {json.dumps(meta)[:400]}")


def fresh_sync(folder: Path, name: str, url: str, token: str) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Live records of a fresh store after a full sync with ``token``."""
    with pier.Database(folder / f"{name}.pier") as db:
        db.sync(url=url, token=token)
        out: Dict[Tuple[str, str], Dict[str, Any]] = {}
        for collection in COLLECTIONS:
            for record, content in db.iter(collection, page_size=500):
                out[(collection, record)] = {"scope": db.metadata(collection, record)["scope"], "body": content}
        return out


def isolation_part(report: Report, main: Serve, minter: Minter, requests: int, rng: random.Random, work: Path) -> Dict[str, Any]:
    master = main.folder / "master.pier"
    folder = work / "isolation"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    seed(folder, main.url, rng)
    # bea's client id becomes hers with her first sync.
    with pier.Database(folder / "bea-client.pier") as db:
        db.sync(url=main.url, token=BEA_KEY)
        bea_client = db.client_id
    before = master_rows(master)
    south = {key: row for key, row in before.items() if row.scope == "south"}
    ana = minter.claims("ana", ["north"], ["north"])
    credentials = [(f"{algorithm} JWT", f"Bearer {minter.token(algorithm, ana)}") for algorithm in ("HS256", "RS256", "ES256")]
    credentials.append(("API key", f"Bearer {ANA_KEY}"))
    run = Isolation(report, main.port, main.url, rng, folder, credentials, south, bea_client)
    rounds, top = 0, 0
    while run.requests < requests:
        if rounds % 25 == 0:  # the newest version, for random cursors
            top = max(row.version for row in master_rows(master).values())
        rounds += 1
        pick = rng.random()
        kind = ("raw pull" if pick < 0.3 else "raw push" if pick < 0.5 else "foreign client" if pick < 0.53
                else "libcurl sync" if pick < 0.78 else "host-transport sync")
        run.kinds[kind] = run.kinds.get(kind, 0) + 1
        if kind == "raw pull":
            run.raw_pull(top)
        elif kind == "raw push":
            run.raw_push(top)
        elif kind == "foreign client":
            run.foreign_client(top)
        else:
            run.database_sync(top, host_transport=kind == "host-transport sync")

    after = master_rows(master)
    south_after = {key: row for key, row in after.items() if row.scope == "south" or key in south}
    if south_after != south:
        changed = sorted(key for key in set(south) | set(south_after) if south.get(key) != south_after.get(key))
        report.fail(f"the server's south records changed: {len(changed)}, first {changed[:10]}")
    rows = log_rows(master, "ana")
    log_refused = sum(1 for c, i, op, outcome, detail in rows if outcome == "rejected" and detail.startswith("forbidden"))
    for collection, record, op, outcome, detail in rows:
        if outcome != "rejected" and ((collection, record) in south or after[(collection, record)].scope != "north"):
            report.fail(f"business log: ana's {op} of {collection}/{record} was {outcome} ({detail})")
    if log_refused != run.south_writes_sent:
        report.fail(f"business log: {log_refused} of ana's writes rejected as forbidden, "
                    f"but she sent {run.south_writes_sent} into south")

    live = {scope: {key for key, row in after.items() if row.scope == scope and not row.deleted} for scope in ("north", "south")}
    bea = minter.token("ES256", minter.claims("bea", ["south"], ["south"]))
    views = {"ana": fresh_sync(folder, "ana-final", main.url, minter.token("HS256", ana)),
             "bea": fresh_sync(folder, "bea-final", main.url, bea)}
    for user, scope in (("ana", "north"), ("bea", "south")):
        held = set(views[user])
        if held != live[scope] or any(v["scope"] != scope for v in views[user].values()):
            report.fail(f"a fresh store of {user} holds {len(held)} records, {len(held & live[scope])} of the "
                        f"{len(live[scope])} live {scope} records, {len(held - live[scope])} others")
    result = {
        "requests": run.requests, "kinds": run.kinds, "records_pulled": run.records_pulled,
        "records_of_other_scopes_seen": run.other_scope_records, "writes_into_south_sent": run.south_writes_sent,
        "writes_into_south_refused": run.south_writes_refused, "business_log_forbidden_rejections": log_refused,
        "north_writes_applied": run.north_writes_applied, "foreign_client_id_refused": run.foreign_client_refused,
        "stores": len(run.stores), "south_records": len(south), "south_unchanged": south_after == south,
        "fresh_store_records": {"ana": len(views["ana"]), "bea": len(views["bea"])},
        "live_records": {scope: len(keys) for scope, keys in live.items()},
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"isolation: {json.dumps(result)}", flush=True)
    return result


# -- parts 3 and 4: oversize and slow drip --------------------------------------------


def open_socket(port: int) -> socket.socket:
    """A loopback connection with a small send buffer, so sent bytes are bytes the server took."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 10)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def receive(sock: socket.socket, deadline: float) -> Optional[bytes]:
    """The next bytes, b"" when the peer closed (or reset) the connection, None at the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
        return None
    try:
        return sock.recv(1 << 16)
    except (ConnectionResetError, BrokenPipeError):
        return b""


def read_answer(sock: socket.socket, deadline: float) -> Tuple[Optional[Answer], bool]:
    """An HTTP answer read off a raw connection, and whether the connection was closed instead."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = receive(sock, deadline)
        if not chunk:
            return None, chunk == b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = receive(sock, deadline)
        if not chunk:
            break
        rest += chunk
    return Answer(int(lines[0].split()[1]), headers, rest[:length]), False


def closes_soon(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes the connection within ``seconds`` (reading what it sends)."""
    deadline = time.monotonic() + seconds
    while True:
        chunk = receive(sock, deadline)
        if chunk is None:
            return False
        if chunk == b"":
            return True


def request_head(port: int, extra: str) -> bytes:
    return (f"POST /v1/sync HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Type: {FRAME_TYPE}\r\n{extra}\r\n").encode("ascii")


def flood(port: int, head: bytes, piece: bytes, count: int, seconds: float = 20.0) -> Dict[str, Any]:
    """Sends ``head`` and ``count`` times ``piece`` until all went, the server answered or closed."""
    sock = open_socket(port)
    started = time.monotonic()
    deadline = started + seconds
    total = len(head) + count * len(piece)
    pending, sent, answer, closed = head, 0, None, False
    try:
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], 0.5)
            if readable:
                answer, closed = read_answer(sock, time.monotonic() + 5)
                break
            if writable:
                if not pending:
                    pending = piece
                try:
                    n = sock.send(pending)
                except (ConnectionResetError, BrokenPipeError):
                    answer, closed = read_answer(sock, time.monotonic() + 1)
                    closed = True
                    break
                sent += n
                pending = pending[n:]
        seconds_taken = time.monotonic() - started
        closed = closed or (answer is not None and closes_soon(sock, 2.0))
    finally:
        sock.close()
    return {"status": answer.status if answer else None, "error_code": answer.error_code() if answer else None,
            "sent_bytes": sent, "total_bytes": total, "answered_before_all_sent": sent < total,
            "connection_closed": closed, "seconds": round(seconds_taken, 3)}


def oversize_part(report: Report, port: int) -> Dict[str, Any]:
    piece, count = b"\0" * (16 << 10), 4096  # 64 MiB
    results: Dict[str, Any] = {
        "with Content-Length": flood(port, request_head(port, f"Content-Length: {count * len(piece)}\r\n"), piece, count),
        "chunked": flood(port, request_head(port, "Transfer-Encoding: chunked\r\n"),
                         b"%x\r\n" % len(piece) + piece + b"\r\n", count),
    }
    for name, outcome in results.items():
        if outcome["status"] != 413 or outcome["error_code"] != PIER_ELIMIT or not outcome["answered_before_all_sent"]:
            report.fail(f"oversize body {name}: expected 413 with a PIER_ELIMIT frame before the client sent it all, "
                        f"got {outcome}")
    flood_head = (f"POST /v1/sync HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Flood: ").encode("ascii")
    headers = flood(port, flood_head, b"a" * (16 << 10), 512)
    results["8 MiB header block"] = headers
    if not headers["answered_before_all_sent"] or not (headers["connection_closed"] or (headers["status"] or 0) >= 400):
        report.fail(f"an 8 MiB header block was not cut off: {headers}")
    for size, refused in ((MAX_REQUEST_BYTES, False), (MAX_REQUEST_BYTES + 1, True)):
        answer = post(port, b"\0" * size, f"Bearer {API_KEY}")
        results[f"body of {size} bytes"] = {"status": answer.status, "error_code": answer.error_code()}
        if (answer.status == 413) != refused:
            report.fail(f"a body of {size} bytes (limit {MAX_REQUEST_BYTES}) was answered {answer.status}")
    print(f"oversize: {json.dumps(results)}", flush=True)
    return results


def drip(port: int, head: bytes, body: bytes, interval: float, bound: float) -> Dict[str, Any]:
    """Sends ``head`` at once, then drips ``body`` one byte every ``interval`` seconds.

    Returns what ended the drip and when (seconds after the dripping started): an answer
    (then whether the connection closed after it), the connection closed, or ``bound``
    plus five seconds of patience running out.
    """
    sock = open_socket(port)
    try:
        sock.settimeout(10)
        sock.sendall(head)
        sock.setblocking(False)
        started = time.monotonic()
        give_up = started + bound + 5
        answer, closed, dripped = None, False, 0
        while time.monotonic() < give_up and dripped < len(body):
            try:
                sock.send(body[dripped : dripped + 1])
                dripped += 1
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            answer, closed = read_answer(sock, time.monotonic() + interval)
            if answer or closed:
                break
        seconds = time.monotonic() - started
        closed_after = bool(answer) and closes_soon(sock, 2.0)
    finally:
        sock.close()
    return {"status": answer.status if answer else None, "error_code": answer.error_code() if answer else None,
            "closed": closed, "closed_after_answer": closed_after, "bytes_dripped": dripped,
            "seconds": round(seconds, 2), "bound_seconds": bound,
            "cut_off": (closed or answer is not None) and seconds <= bound}


def start_limits_server(work: Path) -> Serve:
    """The server of parts 3 and 4: small request limit, short idle timeout and grace period."""
    http_settings: Dict[str, Any] = {"max_request_bytes": MAX_REQUEST_BYTES, "idle_timeout_seconds": IDLE_TIMEOUT,
                                     "request_timeout_seconds": REQUEST_TIMEOUT}
    server = Serve(work / "limits", str(work / "limits" / "master.pier"), {"http": http_settings})
    server.start()
    return server


def drip_part(report: Report, port: int) -> Dict[str, Any]:
    head = request_head(port, "Content-Length: 4096\r\n")
    results: Dict[str, Any] = {"headers": drip(port, b"", head, 0.1, HEADER_DRIP_BOUND)}
    if not results["headers"]["cut_off"]:
        report.fail(f"request headers dripped one byte every 0.1 s were not cut off within {HEADER_DRIP_BOUND} s: "
                    f"{results['headers']}")
    body = drip(port, head, b"\0" * 4096, 0.2, BODY_DRIP_BOUND)
    results["body"] = body
    answered_right = body["status"] is None or (
        body["status"] == 408 and body["error_code"] == PIER_ENETWORK and body["closed_after_answer"])
    if not body["cut_off"] or not answered_right:
        report.fail(f"a body dripped one byte every 0.2 s was not answered 408 (error frame, connection closed) "
                    f"or cut off within {BODY_DRIP_BOUND} s: {body}")
    print(f"slow drip: {json.dumps(results)}", flush=True)
    return results


def limits_part(report: Report, work: Path) -> Dict[str, Any]:
    """Parts 3 and 4 on their own server."""
    server = start_limits_server(work)
    try:
        frame, answer = capture_frame(work / "limits", server.port, f"Bearer {API_KEY}")
        if answer.status != 200:
            report.fail(f"limits server: a valid request was answered {answer.status}")
        return {"config": {"max_request_bytes": MAX_REQUEST_BYTES, "idle_timeout_seconds": IDLE_TIMEOUT,
                           "request_timeout_seconds": REQUEST_TIMEOUT},
                "valid_request_status": answer.status, "valid_request_bytes": len(frame),
                "oversize": oversize_part(report, server.port), "slow_drip": drip_part(report, server.port)}
    finally:
        server.stop()


# -- main -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="ana's random requests (default 1000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument("--work", help="work folder (default: a new temporary folder, removed after a clean run)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1_000_000_007
    rng = random.Random(seed)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pier-security-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = Report()
    print(f"security: seed {seed}, {args.requests} requests, work folder {work}", flush=True)

    keys = Keys.make(work / "keys", rng)
    minter = Minter(keys)
    # Key ids as an identity provider's tokens carry them: a token naming another kid is refused.
    jwt = {"rs256_public_key_file": str(keys.rsa.public), "es256_public_key_file": str(keys.ec.public),
           "issuer": ISSUER, "audience": AUDIENCE, "rs256_key_id": "rsa-1", "es256_key_id": "ec-1", "hs256_key_id": "hs-1"}
    users = [{"key": PROBE_KEY, "user": PROBE, "read_scopes": ["north"], "write_scopes": ["north"]},
             {"key": ANA_KEY, "user": "ana", "read_scopes": ["north"], "write_scopes": ["north"]},
             {"key": BEA_KEY, "user": "bea", "read_scopes": ["south"], "write_scopes": ["south"]}]
    main_server = Serve(work / "main", str(work / "main" / "master.pier"),
                        auth={"jwt": dict(jwt, hs256_secret_file=str(work / "keys" / "hs256.secret")), "api_keys": users})
    asym_server = Serve(work / "asymmetric", str(work / "asymmetric" / "master.pier"), auth={"jwt": jwt, "api_keys": users[:1]})
    with main_server, asym_server:
        credentials = credentials_part(report, main_server, asym_server, minter, work)
        isolation = isolation_part(report, main_server, minter, args.requests, rng, work)
    limits = limits_part(report, work)

    command = f"python3 reliability/security.py --requests {args.requests} --seed {seed}"
    write_result(args.json, {
        "part": "security", "seed": seed, "ok": not report.violations, "violations": report.violations,
        "credentials": credentials, "isolation": isolation, "limits": limits,
        "seconds": round(time.monotonic() - started, 1), "work": str(work), "command": command,
    })
    if not report.violations and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())

"""A FAKE Centauri peer (not centauri): the HTTP API the centauri driver uses, for its tests.

No Centauri peer can be installed here (it is a Go program with no package anywhere), so this in-memory
stand-in, written from centauri v0.0.2's server code as read, is served by http.server in a thread on 127.0.0.1
(a free port). It shares no code with drivers/centauri.py.

Implemented: POST /message (JSON {type, channel, id, pubKeyID, data: base64}; type must be bytes or file,
pubKeyID and data non-empty; the channel is reduced to [A-Za-z0-9-]; answers 202 with an empty body);
GET /messages?channel= (the messages of the key that signed the request, JSON list of {id, channel, pubKeyID,
size, createdAt} with RFC 3339 nanosecond times, or null when there are none); GET and DELETE
/message/{keyID}/{channel}/{id} (the signer must own keyID; 400 "message does not exist" otherwise);
X-Signature checks (base64 JSON of base64 public_key/data/signature, RSA PKCS#1 v1.5 SHA-256 over data,
timestamp at most 300 s old; 400 with the reason otherwise); GET /statusz.
Not implemented: X-Token authentication, CORS, peer-to-peer replication, the 90-day cleanup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def _clean(channel: str) -> str:
    return re.sub(r"[^a-zA-Z0-9-]", "-", channel)


def _key_id(pem: bytes) -> str:
    return hashlib.sha256(pem if pem.endswith(b"\n") else pem + b"\n").hexdigest()


def _rfc3339(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return stamp + (f".{digits}" if digits else "") + "Z"


class BadRequest(Exception):
    pass


class FakePeer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: dict[str, dict[str, dict[str, tuple[bytes, int, str]]]] = {}  # key -> channel -> id -> ..
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.status_override: dict[str, int] = {}  # method -> status to answer instead (fault tests)
        self.vanish_next_fetch = False  # the next fetched message is removed first (another consumer took it)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def pending(self, key_id: str, channel: str) -> int:
        with self.lock:
            return len(self.messages.get(key_id, {}).get(_clean(channel), {}))

    def stored(self, key_id: str, channel: str) -> list[tuple[bytes, str]]:
        """(envelope, type) of the stored messages, oldest first."""
        with self.lock:
            found = self.messages.get(key_id, {}).get(_clean(channel), {})
            return [(data, kind) for data, _, kind in sorted(found.values(), key=lambda v: v[1])]

    # -- the API ---------------------------------------------------------------------------------------------
    def create(self, body: bytes) -> None:
        try:
            doc = json.loads(body)
            data = base64.b64decode(doc.get("data") or "", validate=True)
        except (ValueError, TypeError) as exc:
            raise BadRequest(str(exc)) from None
        if not doc.get("pubKeyID"):
            raise BadRequest("public key id is required")
        if not data:
            raise BadRequest("data is empty")
        if doc.get("type") not in ("bytes", "file"):
            raise BadRequest("type is invalid")
        channel = _clean(doc.get("channel") or "") or "default"
        with self.lock:
            box = self.messages.setdefault(doc["pubKeyID"], {}).setdefault(channel, {})
            box[str(uuid.uuid4())] = (data, time.time_ns(), doc["type"])

    def signer(self, header: str) -> str:
        """The key id of a valid X-Signature header."""
        if not header:
            raise BadRequest("no signature header")
        try:
            req = json.loads(base64.b64decode(header, validate=True))
            pem = base64.b64decode(req["public_key"])
            data = base64.b64decode(req["data"])
            sig = base64.b64decode(req["signature"])
            key = serialization.load_pem_public_key(pem)
            key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg]
            stamp = json.loads(data)["timestamp"]
        except Exception as exc:  # noqa: BLE001 - any bad signature is a 400, as the peer answers
            raise BadRequest(f"invalid signature: {type(exc).__name__}") from None
        if stamp < time.time() - 300:
            raise BadRequest("timestamp is too old")
        return _key_id(pem)

    def listing(self, key_id: str, channel: str) -> list[dict] | None:
        with self.lock:
            boxes = self.messages.get(key_id, {})
            chosen = {channel: boxes.get(channel, {})} if channel else boxes
            out = [{"id": ident, "channel": ch, "pubKeyID": key_id, "size": len(data), "createdAt": _rfc3339(ns)}
                   for ch, box in chosen.items() for ident, (data, ns, _) in box.items()]
        return out or None

    def take(self, key_id: str, channel: str, ident: str, remove: bool) -> bytes:
        with self.lock:
            box = self.messages.get(key_id, {}).get(channel or "default", {})
            if ident not in box:
                raise BadRequest("message does not exist")
            return box.pop(ident)[0] if remove else box[ident][0]


def _handler(peer: FakePeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            peer.requests.append((method, url.path, dict(self.headers)))
            if method in peer.status_override:
                return self._reply(peer.status_override[method], b"injected failure\n")
            try:
                if method == "POST" and url.path == "/message":
                    peer.create(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                    return self._reply(202)
                if method == "GET" and url.path == "/statusz":
                    return self._reply(200, b"OK")
                if method == "GET" and url.path == "/messages":
                    channel = _clean(parse_qs(url.query).get("channel", [""])[0])
                    key = peer.signer(self.headers.get("X-Signature", ""))
                    body = json.dumps(peer.listing(key, channel)).encode() + b"\n"
                    return self._reply(200, body, "application/json")
                parts = url.path.split("/")
                if method in ("GET", "DELETE") and len(parts) == 5 and parts[1] == "message":
                    key_id, channel, ident = parts[2], _clean(unquote(parts[3])), unquote(parts[4])
                    if peer.signer(self.headers.get("X-Signature", "")) != key_id:
                        raise BadRequest("key id mismatch")
                    if method == "GET" and peer.vanish_next_fetch:
                        peer.vanish_next_fetch = False
                        peer.take(key_id, channel, ident, remove=True)
                    data = peer.take(key_id, channel, ident, remove=method == "DELETE")
                    return self._reply(200, b"" if method == "DELETE" else data)
                return self._reply(404, b"404 page not found\n")
            except BadRequest as exc:
                return self._reply(400, f"{exc}\n".encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

    return Handler

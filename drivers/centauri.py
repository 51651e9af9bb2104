"""centauri: procx takes the oldest pending message of a channel; pushx sends one encrypted message.

A Centauri peer (robertlestak/centauri) keeps end-to-end encrypted messages for the owner of an RSA key. The
peer's HTTP API, as the original driver used it through centauri's agent package (v0.0.2):
- POST {peer}/message  JSON {"type", "channel", "id": "", "pubKeyID", "data": base64(envelope)} -> 202
- GET  {peer}/messages?channel=C  -> JSON list of {"id", "channel", "pubKeyID", "size", "createdAt"} (or null)
- GET / DELETE {peer}/message/{pubKeyID}/{channel}/{id}  -> the envelope / removes the message
The GET/DELETE requests carry `X-Signature`: base64 of the JSON {"public_key", "data", "signature"} (Go byte
slices, so each base64) where data is {"timestamp": unix seconds}, signed with RSA PKCS#1 v1.5 over SHA-256 by
the recipient's private key; the peer serves the messages of the key whose id (sha256 hex of its PKIX PEM) it
derives from that signature. The envelope is hex(RSA-OAEP-SHA1({"k": hex(aes key), "n": hex(nonce)})) + "." +
hex(AES-256-GCM ciphertext). Channel names are reduced to [A-Za-z0-9-] (others become "-"), as the peer does.

Fixes over the original (procx.md §4.7, pushx.md §4.4 and §6 #8):
- pushx succeeds only on the peer's 202 (the original counted any status as delivered); procx treats a failed
  listing or a failed removal as an error (the original saw "no work" and "cleared");
- the recipient id is computed from the public key re-encoded as PKIX PEM (what the recipient computes from
  its private key), so a key given with other line endings or as PKCS#1 still reaches it;
- -centauri-message-type is checked (bytes or file) and file needs -centauri-filename.
procx gives the decrypted data as it is (a file message keeps its "file:<name>|" prefix, as the original did).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

from core.errors import ProviderError, UsageError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work

NAME = "centauri"
TIMEOUT = 30.0
MESSAGE_TYPES = ("bytes", "file")
_UNSAFE = re.compile(r"[^a-zA-Z0-9-]")
_GONE = ("does not exist", "not found")  # the peer's 400 answers for a message another consumer removed


def clean_channel(channel: str) -> str:
    """The peer's channel name: every character outside [A-Za-z0-9-] becomes "-"."""
    return _UNSAFE.sub("-", channel)


def key_id(public_pem: bytes) -> str:
    """The peer's id of a public key: sha256 hex of its PEM text, with a trailing newline ensured."""
    return hashlib.sha256(public_pem if public_pem.endswith(b"\n") else public_pem + b"\n").hexdigest()


def _pem_text(config, plain: str, b64: str) -> bytes:
    """The PEM of a key option pair: the base64 one wins; a usage error naming the flag (never the key)."""
    if config[b64]:
        try:
            return base64.b64decode(config[b64], validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"-{b64}: not valid base64") from None
    return config[plain].encode()


def public_pem(key) -> bytes:
    """The PKIX PEM of a public key (or of a private key's public half), as Go's pem.EncodeToMemory writes it."""
    from cryptography.hazmat.primitives import serialization

    if hasattr(key, "public_key"):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(pem: bytes, flag: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise UsageError(f"-{flag}: not an unencrypted PEM private key (PKCS#1 or PKCS#8)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"-{flag}: not an RSA key")
    return key


def load_public_key(pem: bytes, flag: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise UsageError(f"-{flag}: not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise UsageError(f"-{flag}: not an RSA key")
    return key


def encrypt(public_key, plaintext: bytes) -> str:
    """The envelope: hex(RSA-OAEP-SHA1(header JSON)) + "." + hex(AES-256-GCM(plaintext))."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aes_key, nonce = os.urandom(32), os.urandom(12)
    sealed = AESGCM(aes_key).encrypt(nonce, plaintext, None)
    header = json.dumps({"k": aes_key.hex(), "n": nonce.hex()}, separators=(",", ":")).encode()
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    return public_key.encrypt(header, oaep).hex() + "." + sealed.hex()


def decrypt(private_key, envelope: str) -> bytes:
    """The plaintext of an envelope; ValueError when it is malformed or not for this key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    parts = envelope.strip().split(".")
    if len(parts) != 2:
        raise ValueError("cannot decrypt: not a centauri envelope")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    try:
        header = json.loads(private_key.decrypt(bytes.fromhex(parts[0]), oaep))
        return AESGCM(bytes.fromhex(header["k"])).decrypt(bytes.fromhex(header["n"]), bytes.fromhex(parts[1]), None)
    except InvalidTag:
        raise ValueError("cannot decrypt: the data does not match its authentication tag") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"cannot decrypt: {' '.join(str(exc).split()) or type(exc).__name__}") from None


def signature(private_key, public: bytes, now: float | None = None) -> str:
    """The X-Signature header: a signed timestamp and the public key, as centauri's agent builds it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    data = json.dumps({"timestamp": int(time.time() if now is None else now)}, separators=(",", ":")).encode()
    signed = private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    doc = {"public_key": base64.b64encode(public).decode(), "data": base64.b64encode(data).decode(),
           "signature": base64.b64encode(signed).decode()}
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


class _Peer:
    """HTTP calls to one peer; network errors become a ProviderError naming host:port."""

    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/")
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    def request(self, method: str, path: str, what: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - http(s) checked in validate
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            text = getattr(reason, "strerror", None) or str(reason)
            raise ProviderError(f"driver {NAME}: cannot {what}: peer {self.where}: {text}") from None

    def refused(self, what: str, status: int, body: bytes) -> ProviderError:
        detail = " ".join(body.decode(errors="replace").split())[:200]
        return ProviderError(f"driver {NAME}: cannot {what}: peer {self.where} answered HTTP {status}"
                             + (f": {detail}" if detail else ""))


def _instant(text: str) -> str:
    """A sortable form of an RFC 3339 time (nanoseconds, any offset) -> UTC ISO text with 9 fraction digits."""
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", text or "")
    if not match:
        return ""
    base, frac, zone = match.groups()
    try:
        moment = datetime.fromisoformat(base + ("+00:00" if zone in (None, "Z") else zone)).astimezone(UTC)
    except ValueError:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + (frac or "").ljust(9, "0")[:9]


class CentauriSource(Source):
    """The oldest pending message of the channel; removed (receipt confirmed) only after success."""

    def open(self) -> None:
        pem = _pem_text(self.config, "centauri-key", "centauri-key-base64")
        flag = "centauri-key-base64" if self.config["centauri-key-base64"] else "centauri-key"
        self.key = load_private_key(pem, flag)
        self.public = public_pem(self.key)
        self.key_id = key_id(self.public)
        self.channel = clean_channel(self.config["centauri-channel"])
        self.peer = _Peer(self.config["centauri-peer-url"])

    def _signed(self) -> dict[str, str]:
        return {"X-Signature": signature(self.key, self.public)}

    def _path(self, ident: str) -> str:
        return f"/message/{self.key_id}/{self.channel}/{quote(ident, safe='')}"

    def get(self, wait: float) -> Work | None:
        what = f"list the messages of channel {self.channel!r}"
        status, body = self.peer.request("GET", "/messages?" + urlencode({"channel": self.channel}), what,
                                         headers=self._signed())
        if status != 200:
            raise self.peer.refused(what, status, body)
        try:
            listed = json.loads(body or b"null") or []
            metas = [m for m in listed if isinstance(m, dict) and m.get("id")]
        except (ValueError, TypeError):
            raise ProviderError(f"driver {NAME}: peer {self.peer.where} sent an invalid message list") from None
        for meta in sorted(metas, key=lambda m: (_instant(str(m.get("createdAt", ""))), str(m["id"]))):
            ident = str(meta["id"])
            what = f"fetch message {ident}"
            status, envelope = self.peer.request("GET", self._path(ident), what, headers=self._signed())
            if status == 400 and any(g in envelope.decode(errors="replace") for g in _GONE):
                continue  # taken and removed by another consumer since the listing
            if status != 200:
                raise self.peer.refused(what, status, envelope)
            try:
                payload = decrypt(self.key, envelope.decode("ascii", errors="replace"))
            except ValueError as exc:
                raise ProviderError(f"driver {NAME}: message {ident} on channel {self.channel!r}: {exc}; it is "
                                    "not for -centauri-key or is damaged") from None
            return Work(payload, ident, meta={"channel": self.channel, "created": meta.get("createdAt", "")})
        return None

    def clear(self, work: Work) -> None:
        what = f"confirm message {work.id}"
        status, body = self.peer.request("DELETE", self._path(str(work.id)), what, headers=self._signed())
        if status != 200:
            raise self.peer.refused(what, status, body)

    def fail(self, work: Work) -> None:
        """Nothing to do: the message stays pending on the peer and is offered again."""


class CentauriSink(Sink):
    """Encrypts for the recipient's public key and posts the message to the peer."""

    def open(self) -> None:
        pem = _pem_text(self.config, "centauri-public-key", "centauri-public-key-base64")
        flag = "centauri-public-key-base64" if self.config["centauri-public-key-base64"] else "centauri-public-key"
        self.key = load_public_key(pem, flag)
        self.key_id = key_id(public_pem(self.key))
        self.channel = clean_channel(self.config["centauri-channel"])
        self.peer = _Peer(self.config["centauri-peer-url"])

    def push(self, payload: bytes) -> str | None:
        kind = self.config["centauri-message-type"] or "bytes"
        if kind == "file":
            payload = f"file:{self.config['centauri-filename']}|".encode() + payload
        envelope = encrypt(self.key, payload)
        doc = {"type": kind, "channel": self.channel, "id": "", "pubKeyID": self.key_id,
               "data": base64.b64encode(envelope.encode()).decode()}
        what = f"send a message to channel {self.channel!r}"
        status, body = self.peer.request("POST", "/message", what, body=json.dumps(doc).encode(),
                                         headers={"Content-Type": "application/json"})
        if status != 202:
            raise self.peer.refused(what, status, body)
        return None


def _validate(config) -> None:
    url = config["centauri-peer-url"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("-centauri-peer-url: must be an http:// or https:// URL")
    if not config["centauri-channel"]:
        raise ValueError("-centauri-channel must not be empty")
    if config.side == PROCX and not (config["centauri-key"] or config["centauri-key-base64"]):
        raise ValueError("-centauri-key or -centauri-key-base64 is required (the private key that decrypts)")
    if config.side == PUSHX:
        if not (config["centauri-public-key"] or config["centauri-public-key-base64"]):
            raise ValueError("-centauri-public-key or -centauri-public-key-base64 is required (the recipient)")
        if config["centauri-message-type"] == "file":
            filename = config["centauri-filename"]
            if not filename:
                raise ValueError("-centauri-filename is required with -centauri-message-type file")
            if "|" in filename:
                raise ValueError("-centauri-filename: must not contain '|'")


SPEC = DriverSpec(
    NAME,
    "a Centauri peer: each encrypted message of a channel is one unit of work",
    [
        Option("centauri-peer-url", required=True, placeholder="URL", help="base URL of the Centauri peer API"),
        Option("centauri-channel", default="default",
               help="channel to read from or send to (characters other than A-Z a-z 0-9 - become -)"),
        Option("centauri-key", sides=PROCX, secret=True, group="auth",
               help="private key (PEM text) to decrypt the messages"),
        Option("centauri-key-base64", sides=PROCX, secret=True, group="auth",
               help="private key as base64 of the PEM (wins over -centauri-key)"),
        Option("centauri-public-key", sides=PUSHX, group="auth",
               help="recipient's RSA public key (PEM text) to encrypt for"),
        Option("centauri-public-key-base64", sides=PUSHX, group="auth",
               help="recipient's public key as base64 of the PEM (wins over -centauri-public-key)"),
        Option("centauri-message-type", default="bytes", sides=PUSHX, choices=MESSAGE_TYPES, group="push",
               help="bytes, or file: the message carries a file name (-centauri-filename)"),
        Option("centauri-filename", sides=PUSHX, group="push", help="file name sent with message type file"),
    ],
    source="drivers.centauri:CentauriSource",
    sink="drivers.centauri:CentauriSink",
    extra="centauri",
    requires=("cryptography",),
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="none: the message stays pending on the peer while the child runs (a second procx on the same "
             "channel and key would take it too: run one consumer per channel)",
        fail="nothing: the message stays pending and is offered again (oldest first)",
        dead_letter="none",
        pushx="the peer answered 202 Accepted (stored on that peer)",
        tested="fake: a project-written peer HTTP API (tests/drivers/centauri_fake.py) that verifies signatures "
               "and stores envelopes; not verified against a real Centauri peer",
    ),
)

"""centauri against the FAKE peer of tests/drivers/centauri_fake.py (no Centauri peer can be installed here).

The conformance suite runs through the fake (a message stays pending until procx confirms it, so a killed
procx loses nothing); then the envelope format, checked with the test's own decryption, the recipient id, file
messages, the peer's refusals, usage errors and secrets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytest.importorskip("cryptography", reason="pip install -e '.[centauri]'")

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from tests.conformance import NO_WAIT, Backend, Conformance  # noqa: E402
from tests.drivers.centauri_fake import FakePeer  # noqa: E402
from tests.drivers.conftest import free_port  # noqa: E402
from tests.support import clean_env, run  # noqa: E402

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


@dataclass
class Keys:
    private: rsa.RSAPrivateKey
    private_pem: str  # PKCS#1, as Go's x509.MarshalPKCS1PrivateKey + pem.Encode writes it
    public_pem: str  # PKIX
    key_id: str


def make_keys() -> Keys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return Keys(key, private, public.decode(), hashlib.sha256(public).hexdigest())


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def peer() -> Iterator[FakePeer]:
    server = FakePeer()
    yield server
    server.stop()


@pytest.fixture
def channel() -> str:
    return f"ch-{uuid.uuid4().hex[:10]}"


def open_envelope(key: rsa.RSAPrivateKey, envelope: bytes) -> bytes:
    """The test's own reading of centauri's envelope: hex(RSA-OAEP-SHA1 header) "." hex(AES-256-GCM)."""
    head, body = envelope.decode().split(".")
    header = json.loads(key.decrypt(bytes.fromhex(head), OAEP))
    return AESGCM(bytes.fromhex(header["k"])).decrypt(bytes.fromhex(header["n"]), bytes.fromhex(body), None)


def seal(public_pem: str, plaintext: bytes) -> bytes:
    """An envelope built by the test, as centauri's keys.EncryptMessage builds it."""
    aes, nonce = os.urandom(32), os.urandom(12)
    header = json.dumps({"k": aes.hex(), "n": nonce.hex()}).encode()
    pub = serialization.load_pem_public_key(public_pem.encode())
    return (pub.encrypt(header, OAEP).hex() + "." + AESGCM(aes).encrypt(nonce, plaintext, None).hex()).encode()


class CentauriBackend(Backend):
    driver = "centauri"
    redelivery_wait = 1.0  # nothing is leased: a message is offered again at once

    def __init__(self, peer: FakePeer, keys: Keys, channel: str) -> None:
        self.peer, self.keys, self.channel = peer, keys, channel

    def common_args(self) -> list[str]:
        return ["-driver", "centauri", "-centauri-peer-url", self.peer.url, "-centauri-channel", self.channel]

    def push_args(self, n: int) -> list[str]:
        return ["-centauri-public-key", self.keys.public_pem]

    def env(self) -> dict[str, str]:
        return clean_env(PROCX_CENTAURI_KEY=self.keys.private_pem)  # the private key by variable, not argv

    def pending(self) -> int:
        return self.peer.pending(self.keys.key_id, self.channel)


class TestCentauriConformanceOnFake(Conformance):
    @pytest.fixture
    def backend(self, peer: FakePeer, keys: Keys, channel: str) -> CentauriBackend:
        return CentauriBackend(peer, keys, channel)


def procx_args(peer: FakePeer, channel: str, *extra: str) -> list[str]:
    return ["-driver", "centauri", "-centauri-peer-url", peer.url, "-centauri-channel", channel, *extra]


def pushx_args(peer: FakePeer, keys: Keys, channel: str, *extra: str) -> list[str]:
    return [*procx_args(peer, channel), "-centauri-public-key", keys.public_pem, *extra]


def key_env(keys: Keys) -> dict[str, str]:
    return clean_env(PROCX_CENTAURI_KEY_BASE64=base64.b64encode(keys.private_pem.encode()).decode())


# -- the envelope and the recipient -------------------------------------------------------------------------
def test_fake_envelope_opens_with_an_independent_decryption(peer: FakePeer, keys: Keys, channel: str) -> None:
    payload = bytes(range(256))
    done = run("pushx", *pushx_args(peer, keys, channel), input=payload)
    assert done.returncode == 0, done.stderr.decode()
    [(envelope, kind)] = peer.stored(keys.key_id, channel)
    assert kind == "bytes"
    assert open_envelope(keys.private, envelope) == payload


def test_fake_procx_reads_an_envelope_built_by_the_test(peer: FakePeer, keys: Keys, channel: str) -> None:
    doc = {"type": "bytes", "channel": channel, "id": "", "pubKeyID": keys.key_id,
           "data": base64.b64encode(seal(keys.public_pem, b"from elsewhere")).decode()}
    peer.create(json.dumps(doc).encode())
    done = run("procx", *procx_args(peer, channel), env=key_env(keys))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"from elsewhere"
    assert peer.pending(keys.key_id, channel) == 0
    methods = [(m, p.split("/")[1]) for m, p, _ in peer.requests[-3:]]
    assert methods == [("GET", "messages"), ("GET", "message"), ("DELETE", "message")]


def test_fake_recipient_id_from_the_reencoded_key(peer: FakePeer, keys: Keys, channel: str) -> None:
    """CRLF line endings or a PKCS#1 public key still reach the recipient (the original hashed the text)."""
    crlf = keys.public_pem.replace("\n", "\r\n")
    pkcs1 = keys.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.PKCS1).decode()
    for n, pem in enumerate((crlf, pkcs1)):
        b64 = base64.b64encode(pem.encode()).decode()
        done = run("pushx", *procx_args(peer, channel), "-centauri-public-key-base64", b64, "-in", f"m{n}")
        assert done.returncode == 0, done.stderr.decode()
    assert peer.pending(keys.key_id, channel) == 2


def test_fake_channel_is_cleaned_as_the_peer_does(peer: FakePeer, keys: Keys) -> None:
    raw = f"my channel/{uuid.uuid4().hex[:6]}"
    assert run("pushx", *pushx_args(peer, keys, raw), "-in", "x").returncode == 0
    cleaned = raw.replace(" ", "-").replace("/", "-")
    assert peer.pending(keys.key_id, cleaned) == 1
    done = run("procx", *procx_args(peer, raw), env=key_env(keys))
    assert done.stdout == b"x"


def test_fake_file_message_carries_its_name(peer: FakePeer, keys: Keys, channel: str) -> None:
    done = run("pushx", *pushx_args(peer, keys, channel, "-centauri-message-type", "file",
                                    "-centauri-filename", "report.csv"), "-in", "a,b")
    assert done.returncode == 0, done.stderr.decode()
    assert peer.stored(keys.key_id, channel)[0][1] == "file"
    assert run("procx", *procx_args(peer, channel), env=key_env(keys)).stdout == b"file:report.csv|a,b"


def test_fake_other_keys_messages_are_not_seen(peer: FakePeer, keys: Keys, channel: str) -> None:
    other = make_keys()
    assert run("pushx", *pushx_args(peer, other, channel), "-in", "not yours").returncode == 0
    done = run("procx", *procx_args(peer, channel), *NO_WAIT, "false", env=key_env(keys))
    assert done.returncode == 0
    assert peer.pending(other.key_id, channel) == 1


def test_fake_fail_leaves_the_message_pending_and_it_comes_back(peer: FakePeer, keys: Keys, channel: str) -> None:
    assert run("pushx", *pushx_args(peer, keys, channel), "-in", "again").returncode == 0
    assert run("procx", *procx_args(peer, channel), "false", env=key_env(keys)).returncode == 1
    assert peer.pending(keys.key_id, channel) == 1
    assert run("procx", *procx_args(peer, channel), env=key_env(keys)).stdout == b"again"


def test_fake_message_taken_by_another_consumer_meanwhile_is_skipped(peer: FakePeer, keys: Keys, channel: str
                                                                     ) -> None:
    for body in ("first", "second"):
        assert run("pushx", *pushx_args(peer, keys, channel), "-in", body).returncode == 0
    peer.vanish_next_fetch = True  # "first" disappears between the listing and its download
    done = run("procx", *procx_args(peer, channel), env=key_env(keys))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"second"
    assert peer.pending(keys.key_id, channel) == 0


def test_fake_requests_are_signed_for_the_key(peer: FakePeer, keys: Keys, channel: str) -> None:
    """X-Signature: base64 JSON of the PKIX PEM, {"timestamp": ...} and its PKCS#1 v1.5 SHA-256 signature."""
    run("procx", *procx_args(peer, channel), *NO_WAIT, env=key_env(keys))
    method, path, headers = peer.requests[-1]
    assert (method, path) == ("GET", "/messages")
    doc = json.loads(base64.b64decode(headers["X-Signature"]))
    assert base64.b64decode(doc["public_key"]).decode() == keys.public_pem
    data = base64.b64decode(doc["data"])
    assert list(json.loads(data)) == ["timestamp"]
    keys.private.public_key().verify(base64.b64decode(doc["signature"]), data, padding.PKCS1v15(), hashes.SHA256())


# -- the peer refuses ---------------------------------------------------------------------------------------------
@pytest.fixture
def faulty() -> Iterator[FakePeer]:
    server = FakePeer()
    yield server
    server.stop()


def test_fake_pushx_needs_202(faulty: FakePeer, keys: Keys, channel: str) -> None:
    """The original counted any status as delivered."""
    faulty.status_override["POST"] = 500
    done = run("pushx", *pushx_args(faulty, keys, channel), "-in", "x", "-out", "-")
    assert done.returncode == 69
    assert f"127.0.0.1:{faulty.port} answered HTTP 500" in done.stderr.decode()
    assert done.stdout == b""  # nothing passed on


def test_fake_failed_listing_and_failed_confirm_are_errors(faulty: FakePeer, keys: Keys, channel: str) -> None:
    assert run("pushx", *pushx_args(faulty, keys, channel), "-in", "x").returncode == 0
    faulty.status_override["DELETE"] = 500
    done = run("procx", *procx_args(faulty, channel), "true", env=key_env(keys))
    assert done.returncode == 69
    assert "confirm message" in done.stderr.decode()
    assert faulty.pending(keys.key_id, channel) == 1
    faulty.status_override["GET"] = 503
    done = run("procx", *procx_args(faulty, channel), "true", env=key_env(keys))
    assert done.returncode == 69
    assert "answered HTTP 503" in done.stderr.decode()


def test_fake_damaged_envelope_names_the_message(peer: FakePeer, keys: Keys, channel: str) -> None:
    doc = {"type": "bytes", "channel": channel, "pubKeyID": keys.key_id,
           "data": base64.b64encode(b"00ff.00ff").decode()}
    peer.create(json.dumps(doc).encode())
    done = run("procx", *procx_args(peer, channel), "true", env=key_env(keys))
    assert done.returncode == 69
    assert "cannot decrypt" in done.stderr.decode()
    assert peer.pending(keys.key_id, channel) == 1


# -- usage errors and secrets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tool", "extra", "flag"), [
    ("procx", ["-centauri-channel", "c"], "-centauri-peer-url"),
    ("procx", ["-centauri-peer-url", "ftp://h", "-centauri-key", "k"], "-centauri-peer-url"),
    ("procx", ["-centauri-peer-url", "http://h"], "-centauri-key"),
    ("procx", ["-centauri-peer-url", "http://h", "-centauri-channel", "", "-centauri-key", "k"],
     "-centauri-channel"),
    ("pushx", ["-centauri-peer-url", "http://h"], "-centauri-public-key"),
    ("pushx", ["-centauri-peer-url", "http://h", "-centauri-public-key", "k", "-centauri-message-type", "file"],
     "-centauri-filename"),
    ("pushx", ["-centauri-peer-url", "http://h", "-centauri-public-key", "k", "-centauri-message-type", "x"],
     "-centauri-message-type"),
])
def test_usage_errors_exit_2_naming_the_flag(tool: str, extra: list[str], flag: str) -> None:
    done = run(tool, "-driver", "centauri", *extra, *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 2, done.stderr.decode()
    assert flag in done.stderr.decode()


def test_bad_keys_are_usage_errors_that_never_show_the_key(peer: FakePeer) -> None:
    secret = "-----BEGIN RSA PRIVATE KEY-----\nS3CRET-KEY-MATERIAL\n-----END RSA PRIVATE KEY-----\n"
    done = run("procx", *procx_args(peer, "c"), "true", env=clean_env(PROCX_CENTAURI_KEY=secret))
    assert done.returncode == 2
    assert "-centauri-key" in done.stderr.decode()
    assert "S3CRET" not in done.stderr.decode()
    done = run("procx", *procx_args(peer, "c"), "true", env=clean_env(PROCX_CENTAURI_KEY_BASE64="S3CRET!!"))
    assert done.returncode == 2
    assert "-centauri-key-base64: not valid base64" in done.stderr.decode()
    assert "S3CRET" not in done.stderr.decode()
    done = run("pushx", *procx_args(peer, "c"), "-centauri-public-key", "junk", "-in", "x")
    assert done.returncode == 2
    assert "-centauri-public-key: not a PEM public key" in done.stderr.decode()


def test_private_key_never_logged(peer: FakePeer, keys: Keys, channel: str) -> None:
    assert run("pushx", *pushx_args(peer, keys, channel), "-in", "x").returncode == 0
    env = {**key_env(keys), "LOG_LEVEL": "debug"}
    done = run("procx", *procx_args(peer, channel), "-log-format", "json", "true", env=env)
    assert done.returncode == 0, done.stderr.decode()
    body = keys.private_pem.splitlines()[1]
    assert body not in done.stderr.decode()
    assert env["PROCX_CENTAURI_KEY_BASE64"][:40] not in done.stderr.decode()


def test_unreachable_peer_exits_69(keys: Keys) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    done = run("procx", "-driver", "centauri", "-centauri-peer-url", url, "true", env=key_env(keys))
    assert done.returncode == 69
    assert f"127.0.0.1:{port}" in done.stderr.decode()
    done = run("pushx", "-driver", "centauri", "-centauri-peer-url", url, "-centauri-public-key", keys.public_pem,
               "-in", "x")
    assert done.returncode == 69
    assert f"127.0.0.1:{port}" in done.stderr.decode()

"""nats against the real nats-server (JetStream on) at 127.0.0.1:4222, plus servers of our own on free ports for
authentication and TLS.

The conformance suite runs on JetStream (at-least-once). Core NATS cannot run it as is: a message published
while no procx is subscribed is dropped by design (at-most-once), so the core tests keep a subscriber up before
publishing (they publish until procx has taken one) and check the bytes, reply subjects and queue groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

nats = pytest.importorskip("nats", reason="pip install -e '.[nats]'")

from core import api, registry, settings  # noqa: E402
from core.work import connect  # noqa: E402
from tests.conformance import PAYLOADS, Backend, Conformance  # noqa: E402
from tests.drivers.conftest import ca_signed_cert, free_port, listening, serving  # noqa: E402
from tests.support import clean_env, command, run, wait_for  # noqa: E402

URL = "nats://127.0.0.1:4222"


def _js_call(fn, url: str = URL):
    """Run `await fn(js, nc)` on a fresh connection (test administration)."""
    async def main():
        try:
            nc = await nats.connect(url, connect_timeout=3, allow_reconnect=False)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"nats-server is not reachable on {url} ({exc!r}); start nats-server -js")
        try:
            return await fn(nc.jetstream(), nc)
        finally:
            await nc.close()
    return asyncio.run(main())


def make_stream(retention: str = "workqueue") -> tuple[str, str]:
    name = f"PROCXTEST{uuid.uuid4().hex[:10].upper()}"
    subject = f"procx-test.{name.lower()}"

    async def add(js, nc):
        await js.add_stream(name=name, subjects=[subject], retention=retention)
    _js_call(add)
    return name, subject


def delete_stream(name: str) -> None:
    async def delete(js, nc):
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    _js_call(delete)


def stream_messages(name: str) -> int:
    async def info(js, nc):
        return (await js.stream_info(name)).state.messages
    return _js_call(info)


def consumer_info(stream: str, durable: str):
    async def info(js, nc):
        return await js.consumer_info(stream, durable)
    return _js_call(info)


class JetStreamBackend(Backend):
    driver = "nats"
    redelivery_wait = 2.0  # the consumer's ack wait

    def __init__(self, stream: str, subject: str) -> None:
        self.stream, self.subject = stream, subject
        self.durable = f"procx-{uuid.uuid4().hex[:8]}"

    def common_args(self) -> list[str]:
        return ["-driver", "nats", "-nats-url", URL, "-nats-subject", self.subject, "-nats-jetstream"]

    def procx_args(self) -> list[str]:
        return ["-nats-durable", self.durable, "-nats-ack-wait", "2s"]

    def pending(self) -> int:
        return stream_messages(self.stream)  # a work-queue stream drops a message once it is acked


@pytest.fixture
def stream():
    name, subject = make_stream()
    yield name, subject
    delete_stream(name)


class TestNatsJetStreamConformance(Conformance):
    @pytest.fixture
    def backend(self, stream) -> JetStreamBackend:
        return JetStreamBackend(*stream)


def js_args(subject: str, *extra: str, durable: str = "procx-test") -> list[str]:
    return ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream",
            "-nats-durable", durable, *extra]


def core_args(subject: str, *extra: str, url: str = URL) -> list[str]:
    return ["-driver", "nats", "-nats-url", url, "-nats-subject", subject, *extra]


# -- JetStream -----------------------------------------------------------------------------------------------
def test_failed_message_is_redelivered_with_its_attempt_count(stream) -> None:
    name, subject = stream
    api.pushx(b"again", ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream"])
    assert run("procx", *js_args(subject), "false").returncode == 1
    with api.work(js_args(subject)) as work:
        assert work.payload == b"again"
        assert work.attempt == 2
    assert stream_messages(name) == 0


def test_durable_consumer_remembers_its_position_on_a_limits_stream() -> None:
    name, subject = make_stream("limits")
    try:
        for item in (b"first", b"second"):
            api.pushx(item, ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream"])
        assert api.procx(js_args(subject)) == b"first"
        assert api.procx(js_args(subject)) == b"second"
        assert api.procx(js_args(subject)) is None
        assert stream_messages(name) == 2  # a limits stream keeps them; the consumer has acked both
        info = consumer_info(name, "procx-test")
        assert (info.num_pending, info.num_ack_pending) == (0, 0)
    finally:
        delete_stream(name)


@pytest.mark.slow
def test_long_child_keeps_its_message_in_progress(stream) -> None:
    """The child runs past the ack wait: procx sends in-progress, so the message is not redelivered meanwhile."""
    name, subject = stream
    api.pushx(b"long", ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream"])
    done = run("procx", *js_args(subject, "-nats-ack-wait", "1s"), sys.executable, "-c",
               "import time; time.sleep(3.5)")
    assert done.returncode == 0, done.stderr.decode()
    assert stream_messages(name) == 0
    assert consumer_info(name, "procx-test").num_redelivered == 0


def lease_events(err: Path) -> list[str]:
    """The work events procx logged (-log-format json) that a lost lease is about."""
    import json

    found = [json.loads(line)["event"] for line in err.read_text().splitlines() if line.startswith("{")]
    return [e for e in found if e in ("lease-lost", "failed", "cleared", "error")]


def start_sleeper(subject: str, tmp_path: Path, *extra: str, durable: str) -> subprocess.Popen:
    """procx (JSON log in tmp_path/err) whose child touches tmp_path/started and sleeps."""
    started = tmp_path / "started"
    child = [sys.executable, "-c", f"import time; open({str(started)!r}, 'w').close(); time.sleep(60)"]
    with open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen([command("procx"), *js_args(subject, *extra, "-log-format", "json", durable=durable),
                                 *child],
                                stderr=err, env=clean_env())
    wait_for(started.exists, timeout=15)
    return proc


@pytest.mark.slow
async def test_a_lapsed_ack_wait_stops_the_child_and_the_message_is_not_naked_over_its_new_holder(
        stream, tmp_path: Path) -> None:
    """procx cannot renew for longer than the ack wait (SIGSTOP): the server redelivers the message to another
    consumer; procx then stops its child and does not nak (a stale nak would redeliver it a third time)."""
    import signal

    name, subject = stream
    api.pushx(b"long job", ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream"])
    proc = await asyncio.to_thread(start_sleeper, subject, tmp_path, "-nats-ack-wait", "1s", durable="lapse")
    nc = await nats.connect(URL)
    try:
        proc.send_signal(signal.SIGSTOP)
        other = await nc.jetstream().pull_subscribe(subject, durable="lapse", stream=name)
        msg = (await other.fetch(1, timeout=10))[0]  # redelivered after the ack wait
        assert (msg.data, msg.metadata.num_delivered) == (b"long job", 2)

        async def hold() -> None:
            while True:
                await msg.in_progress()
                await asyncio.sleep(0.2)

        holding = asyncio.create_task(hold())
        proc.send_signal(signal.SIGCONT)
        assert await asyncio.to_thread(proc.wait, 15) == 143  # the child got SIGTERM
        with pytest.raises(nats.errors.TimeoutError):
            await other.fetch(1, timeout=1.5)  # not delivered again while the new holder has it
        holding.cancel()
        await msg.ack_sync()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        await nc.close()
    assert lease_events(tmp_path / "err") == ["lease-lost", "failed"]
    assert await asyncio.to_thread(stream_messages, name) == 0


def test_a_deleted_consumer_stops_the_child_and_the_message_stays(stream, tmp_path: Path) -> None:
    """The server answers in-progress with no responders once the consumer is gone: the lease is lost."""
    name, subject = stream
    api.pushx(b"job", ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream"])
    proc = start_sleeper(subject, tmp_path, "-nats-ack-wait", "1s", durable="gone")
    try:
        _js_call(lambda js, nc: js.delete_consumer(name, "gone"))
        assert proc.wait(timeout=15) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    assert lease_events(tmp_path / "err") == ["lease-lost", "failed"]
    assert "consumer 'gone' no longer exists" in (tmp_path / "err").read_text()
    assert stream_messages(name) == 1
    assert run("procx", *js_args(subject, durable="gone")).stdout == b"job"  # a new consumer delivers it
    assert stream_messages(name) == 0


def test_pushx_returns_the_stream_sequence(stream) -> None:
    _, subject = stream
    args = ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream"]
    assert [api.pushx(b"a", args), api.pushx(b"b", args)] == ["1", "2"]


def test_pushx_jetstream_without_a_stream_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run("pushx", "-driver", "nats", "-nats-url", URL, "-nats-subject", f"nostream.{uuid.uuid4().hex}",
               "-nats-jetstream", "-in", "x", "-out", str(out))
    assert done.returncode == 69
    assert b"no JetStream stream stores subject" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    ((), b"no JetStream stream stores subject"),
    (("-nats-stream", "NOSUCHSTREAM"), b"stream 'NOSUCHSTREAM'"),
])
def test_procx_jetstream_missing_stream_is_a_clear_error(extra: tuple[str, ...], message: bytes) -> None:
    done = run("procx", *js_args(f"nostream.{uuid.uuid4().hex}", *extra), "true")
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert len(line.splitlines()) == 1
    assert message.decode() in line and "127.0.0.1:4222" in line


# -- core NATS -----------------------------------------------------------------------------------------------
class Publisher:
    """Publishes on a subject every 20 ms (optionally with a reply subject) until stopped."""

    def __init__(self, subject: str, payload: bytes, reply: str = "", url: str = URL) -> None:
        self.subject, self.payload, self.reply, self.url = subject, payload, reply, url
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        nc = await nats.connect(self.url)
        while not self.stop.is_set():
            await nc.publish(self.subject, self.payload, reply=self.reply)
            await nc.flush()
            await asyncio.sleep(0.02)
        await nc.close()

    def __enter__(self) -> Publisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.mark.parametrize("name", ["non-utf8", "nul-bytes", "unicode"])
def test_core_round_trip_byte_for_byte_with_a_subscriber_up(name: str, tmp_path: Path) -> None:
    subject = f"procx-test.core.{uuid.uuid4().hex}"
    out = tmp_path / "got"
    copy = [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())", str(out)]
    proc = subprocess.Popen([command("procx"), *core_args(subject, "-pass-work-as-stdin"), *copy], env=clean_env())
    try:
        with Publisher(subject, PAYLOADS[name]):
            assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.read_bytes() == PAYLOADS[name]


def test_core_no_subscriber_means_no_work() -> None:
    subject = f"procx-test.core.{uuid.uuid4().hex}"
    api.pushx(b"lost", core_args(subject))  # nobody subscribed: core NATS drops it (at-most-once)
    done = run("procx", *core_args(subject, "-wait-for-work", "0"), "true")
    assert done.returncode == 0 and done.stdout == b""


def open_source(args: list[str]):
    _, config = settings.load("procx", args, clean_env())
    return connect(registry.load(config.spec, "procx")(config))


async def test_core_reply_subject_belongs_to_its_own_message() -> None:
    """clear/fail answer the message's own reply subject; a later message without one gets no reply at all
    (the original reused the stale reply subject, procx.md §7.3 #26)."""
    subject = f"procx-test.core.{uuid.uuid4().hex}"
    inbox = f"_INBOX.procx-test.{uuid.uuid4().hex}"
    nc = await nats.connect(URL)
    replies: list[bytes] = []

    async def on_reply(msg) -> None:
        replies.append(msg.data)

    await nc.subscribe(inbox, cb=on_reply)
    source = await asyncio.to_thread(open_source, core_args(subject, "-nats-clear-response", "done",
                                                            "-nats-fail-response", "oops"))
    try:
        for payload, reply, finish in ((b"with-reply", inbox, "clear"), (b"no-reply", "", "fail"),
                                       (b"with-reply-2", inbox, "fail")):
            with Publisher(subject, payload, reply):
                work = await asyncio.to_thread(source.get, 10)
            assert work is not None and work.payload == payload
            work.source = source
            await asyncio.to_thread(getattr(work, finish))
            await nc.flush()
        assert replies == [b"done", b"oops"]
    finally:
        await asyncio.to_thread(source.close)
        await nc.close()


async def test_core_default_responses_are_0_and_1() -> None:
    subject = f"procx-test.core.{uuid.uuid4().hex}"
    nc = await nats.connect(URL)
    answers = []
    for child in ("true", "false"):
        proc = await asyncio.create_subprocess_exec(command("procx"), *core_args(subject), child, env=clean_env())
        while True:
            try:
                answers.append((await nc.request(subject, b"job", timeout=0.2)).data)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.02)
            except nats.errors.TimeoutError:
                pass
        await proc.wait()
    await nc.close()
    assert answers == [b"0", b"1"]


def test_core_queue_group_gives_a_message_to_one_member(tmp_path: Path) -> None:
    subject = f"procx-test.core.{uuid.uuid4().hex}"
    log = tmp_path / "log"
    script = "import sys; open(sys.argv[1], 'ab').write(sys.stdin.buffer.read() + b'\\n')"
    procs = [subprocess.Popen([command("procx"), *core_args(subject, "-nats-queue-group", "workers", "-daemon",
                                                             "-pass-work-as-stdin"), sys.executable, "-c", script,
                               str(log)], env=clean_env()) for _ in range(2)]

    async def publish() -> None:
        nc = await nats.connect(URL)
        for i in range(20):  # each published once; every member may be between two gets
            await nc.publish(subject, f"m{i}".encode())
            await nc.flush()
            await asyncio.sleep(0.05)
        await nc.close()

    try:
        wait_for(lambda: all(p.poll() is None for p in procs), timeout=5)
        asyncio.run(publish())
        wait_for(lambda: log.exists() and log.read_bytes(), timeout=10)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    lines = log.read_bytes().split()
    assert len(lines) == len(set(lines)), "a message went to two members of the group"


# -- connection, auth, TLS, bad settings ---------------------------------------------------------------------
@contextlib.contextmanager
def nats_server(tmp: Path, config: str) -> Iterator[str]:
    """A nats-server of our own on a free port, `config` added to its configuration: its URL."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        pytest.fail("nats-server is not installed (apt-get install nats-server)")
    port = free_port()
    conf = tmp / f"nats-{port}.conf"
    conf.write_text(f"listen: 127.0.0.1:{port}\n{config}\n")
    with serving([binary, "-c", str(conf)], lambda: listening(port), "nats-server", tmp / f"nats-{port}.log"):
        yield f"nats://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def nkey_seed(tmp_path_factory) -> tuple[Path, str]:
    import nacl.signing
    import nkeys

    raw = nacl.signing.SigningKey.generate().encode()
    seed = nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    path = tmp_path_factory.mktemp("nkey") / "user.nk"
    path.write_bytes(seed)
    return path, public


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory, nkey_seed):
    _, public = nkey_seed
    users = f'authorization {{ users = [ {{user: "alice", password: "right-pass"}}, {{nkey: "{public}"}} ] }}'
    with nats_server(tmp_path_factory.mktemp("nats-auth"), users) as url:
        yield url


@pytest.fixture(scope="session")
def token_server(tmp_path_factory):
    with nats_server(tmp_path_factory.mktemp("nats-token"), 'authorization { token: "t0ken-right" }') as url:
        yield url


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _keypair(prefix: int):
    import nacl.signing
    import nkeys

    seed = nkeys.encode_seed(nacl.signing.SigningKey.generate().encode(), prefix)
    pair = nkeys.from_seed(bytearray(seed))
    return seed, pair, pair.public_key.decode()


def _jwt(claims: dict, signer) -> str:
    import base64
    import hashlib
    import json
    import time

    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    claims = dict(claims, iat=int(time.time()))
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims).encode()).digest()).decode().rstrip("=")
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64(signer.sign(f'{header}.{payload}'.encode()))}"


@pytest.fixture(scope="session")
def operator_server(tmp_path_factory):
    """A nats-server in operator mode (decentralized JWT auth): a user JWT + seed, as a .creds file and apart."""
    import nkeys

    folder = tmp_path_factory.mktemp("nats-operator")
    _, op, op_pub = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    _, account, account_pub = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, _, user_pub = _keypair(nkeys.PREFIX_BYTE_USER)
    op_jwt = _jwt({"iss": op_pub, "sub": op_pub, "name": "op", "nats": {"type": "operator", "version": 2}}, op)
    limits = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
              "leaf": -1}
    account_jwt = _jwt({"iss": op_pub, "sub": account_pub, "name": "acc",
                        "nats": {"type": "account", "version": 2, "limits": limits}}, op)
    user_jwt = _jwt({"iss": account_pub, "sub": user_pub, "name": "u",
                     "nats": {"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1,
                              "payload": -1}}, account)
    files = {"jwt": folder / "user.jwt", "seed": folder / "user.nk", "creds": folder / "user.creds",
             "stranger": folder / "stranger.nk"}
    files["jwt"].write_text(user_jwt)
    files["seed"].write_bytes(user_seed)
    files["stranger"].write_bytes(_keypair(nkeys.PREFIX_BYTE_USER)[0])
    files["creds"].write_text(f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
                              f"-----BEGIN USER NKEY SEED-----\n{user_seed.decode()}\n------END USER NKEY SEED------\n")
    config = f"operator: {op_jwt}\nresolver: MEMORY\nresolver_preload: {{ {account_pub}: {account_jwt} }}"
    with nats_server(folder, config) as url:
        yield url, files


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nats-tls")
    certs = ca_signed_cert(folder)
    tls = f'tls {{ cert_file: "{certs["server"]}", key_file: "{certs["server-key"]}" }}'
    with nats_server(folder, tls) as url:
        yield url, certs


def pushx_ok(args: list[str]) -> None:
    done = run("pushx", *args, "-in", "x")
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_unreachable_port_is_one_line_naming_driver_host_and_port(tool: str) -> None:
    done = run(tool, *core_args("s", url="nats://127.0.0.1:1"), "-nats-password", "pw-secret", "-nats-username",
               "u", *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert len(line.splitlines()) == 1, line
    assert "nats" in line and "127.0.0.1:1" in line
    assert "pw-secret" not in line


def test_user_and_password(auth_server: str) -> None:
    pushx_ok(core_args("s", "-nats-username", "alice", "-nats-password", "right-pass", url=auth_server))
    done = run("pushx", *core_args("s", "-nats-username", "alice", "-nats-password", "wrong-pass",
                                   url=auth_server), "-in", "x")
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert "authorization refused" in line and "wrong-pass" not in line
    assert len(line.splitlines()) == 1


def test_wrong_password_consumes_nothing(auth_server: str, stream) -> None:
    """procx with a wrong password stops at connect: the work on the real server stays where it is."""
    name, subject = stream
    api.pushx(b"keep", ["-driver", "nats", "-nats-url", URL, "-nats-subject", subject, "-nats-jetstream"])
    done = run("procx", "-driver", "nats", "-nats-url", auth_server, "-nats-subject", subject, "-nats-jetstream",
               "-nats-username", "alice", "-nats-password", "wrong", "true")
    assert done.returncode == 69
    assert stream_messages(name) == 1


def test_nkey_seed_file(auth_server: str, nkey_seed) -> None:
    path, _ = nkey_seed
    pushx_ok(core_args("s", "-nats-nkey-file", str(path), url=auth_server))


def test_creds_file_and_jwt_with_nkey(operator_server) -> None:
    url, files = operator_server
    pushx_ok(core_args("s", "-nats-creds-file", str(files["creds"]), url=url))
    pushx_ok(core_args("s", "-nats-jwt-file", str(files["jwt"]), "-nats-nkey-file", str(files["seed"]), url=url))
    for extra in ((), ("-nats-jwt-file", str(files["jwt"]), "-nats-nkey-file", str(files["stranger"]))):
        done = run("pushx", *core_args("s", *extra, url=url), "-in", "x")
        assert done.returncode == 69
        assert b"authorization refused" in done.stderr


def test_token(token_server: str) -> None:
    pushx_ok(core_args("s", "-nats-token", "t0ken-right", url=token_server))
    done = run("pushx", *core_args("s", "-nats-token", "wrong-t0ken", url=token_server), "-in", "x")
    assert done.returncode == 69
    assert b"authorization refused" in done.stderr and b"wrong-t0ken" not in done.stderr


def test_tls_with_a_ca_file(tls_server) -> None:
    url, certs = tls_server
    pushx_ok(core_args("s", "-nats-enable-tls", "-nats-tls-ca-file", str(certs["ca"]), url=url))
    done = run("pushx", *core_args("s", "-nats-enable-tls", url=url), "-in", "x")  # not trusted
    assert done.returncode == 69
    assert b"certificate" in done.stderr.lower()
    pushx_ok(core_args("s", "-nats-enable-tls", "-nats-tls-insecure", url=url))


@pytest.mark.parametrize("argv, message", [
    (["-nats-url", URL], b"-nats-subject is required"),
    (["-nats-url", "http://x:1", "-nats-subject", "s"], b"not a NATS server URL"),
    (["-nats-url", URL, "-nats-subject", "s", "-nats-jetstream", "-nats-queue-group", "g"],
     b"-nats-queue-group: not used with -nats-jetstream"),
    (["-nats-url", URL, "-nats-subject", "s", "-nats-username", "u"], b"-nats-password is required"),
    (["-nats-url", URL, "-nats-subject", "s", "-nats-jwt-file", __file__], b"-nats-jwt-file needs -nats-nkey-file"),
    (["-nats-subject", "s"], b"-nats-url (PROCX_NATS_URL) is required"),
    (["-nats-url", URL, "-nats-subject", "s", "-nats-creds-file", "/no/such.creds"], b"-nats-creds-file: no such"),
])
def test_bad_settings_are_usage_errors(argv: list[str], message: bytes) -> None:
    done = run("procx", "-driver", "nats", *argv, "true")
    assert done.returncode == 2
    assert message in done.stderr

"""etcd: procx reads a key (or the first key under a prefix), then rm/put/mv; pushx puts one key.

Talks to etcd's v3 JSON gateway through etcd3gw (HTTP, so TLS is HTTPS). Fixes over the original:
- with -etcd-with-prefix, clear/fail act on the key actually read (the original acted on the prefix string);
- mv needs a distinct target key and never deletes the job it could not move (the original put then deleted
  the same key when no target was given); put, mv and their delete run in one transaction;
- -etcd-*-val is filled from each item's value; the template is never replaced (state leaked in the original);
- unknown ops, a user name without a password (or the reverse), TLS files without -etcd-tls-enable are errors.
Extensions: `{{key}}` in -etcd-clear-key / -etcd-fail-key is the key read (so `done/{{key}}` works under a
prefix); mv writes the -etcd-*-val template when one is given (else the value read); -etcd-claim-ttl makes a
taken key exclusive: a claim key under an etcd lease, kept alive while the child runs, so two procx never take the
same key and the claim of a procx that died expires after the TTL.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

from core.errors import ProviderError, UsageError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import Tls

OPS = ("rm", "put", "mv")
TLS = Tls("etcd", enable="tls-enable", ca="tls-ca", cert="tls-cert", key="tls-key")
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 30.0
SCAN_BATCH = 32  # keys looked at per range request when claiming under a prefix


def _after(phase: str, when: str) -> list[Option]:
    return [
        Option(f"etcd-{phase}-op", sides=PROCX, choices=OPS,
               help=f"what to do with the key {when}: rm, put or mv (empty: leave it)"),
        Option(f"etcd-{phase}-key", sides=PROCX,
               help=f"key to act on {when} (put/rm) or move to (mv) (empty: the key read); {{{{key}}}} is the key "
                    "read"),
        Option(f"etcd-{phase}-val", sides=PROCX,
               help=f"value written by put (and mv) {when}; {{{{path}}}} takes values from the retrieved JSON"),
    ]


def _validate(config) -> None:
    user, password = config["etcd-username"], config["etcd-password"]
    if bool(user) != bool(password):
        raise ValueError("-etcd-username and -etcd-password go together (one of them is empty)")
    if not config["etcd-hosts"] or not all(h.strip() for h in config["etcd-hosts"]):
        raise ValueError("-etcd-hosts is required: comma list of endpoints, e.g. 127.0.0.1:2379")
    TLS.validate(config)
    if config.side == PUSHX:
        if not config["etcd-key"]:
            raise ValueError("-etcd-key is required: the key to write the payload to")
        return
    key = config["etcd-retrieve-key"]
    if not key:
        raise ValueError("-etcd-retrieve-key is required: the key (or with -etcd-with-prefix the prefix) to read")
    for phase in ("clear", "fail"):
        target = config[f"etcd-{phase}-key"]
        if config[f"etcd-{phase}-op"] == "mv":
            if not target or (target == key and not config["etcd-with-prefix"]):
                raise ValueError(f"-etcd-{phase}-key: mv needs a target key other than the key read "
                                 "(e.g. done/{{key}})")
            if config["etcd-with-prefix"] and target.split("{{", 1)[0].startswith(key):
                raise ValueError(f"-etcd-{phase}-key: the mv target {target!r} is under the retrieve prefix "
                                 f"{key!r}: the job would be taken again")
    if config["etcd-claim-ttl"] < 0:
        raise ValueError("-etcd-claim-ttl: must not be negative")
    if config["etcd-claim-ttl"]:
        claims = config["etcd-claim-prefix"]
        if not claims:
            raise ValueError("-etcd-claim-prefix: must not be empty when -etcd-claim-ttl is set")
        if config["etcd-with-prefix"] and (claims.startswith(key) or key.startswith(claims)):
            raise ValueError(f"-etcd-claim-prefix {claims!r} overlaps the retrieve key {key!r}: claims would be "
                             "taken as work")


SPEC = DriverSpec(
    "etcd",
    "etcd: the value of a key is one unit of work",
    [
        Option("etcd-hosts", "list", help="comma list of endpoints, e.g. 127.0.0.1:2379 or https://host:2379"),
        Option("etcd-username", help="user name (together with -etcd-password)"),
        Option("etcd-password", secret=True, help="password (together with -etcd-username)"),
        *TLS.options(),
        Option("etcd-retrieve-key", sides=PROCX, help="key holding the work (with -etcd-with-prefix: the prefix)"),
        Option("etcd-with-prefix", "bool", sides=PROCX, group="retrieve",
               help="treat the retrieve key as a prefix and take the first key under it (in key order)"),
        *_after("clear", "after success"),
        *_after("fail", "after failure"),
        Option("etcd-claim-ttl", "duration", 0.0, sides=PROCX, group="retrieve", extension=True,
               help="claim the key taken under an etcd lease of this TTL (kept alive while the child runs), so "
                    "no other procx takes it; a dead procx's claim expires after the TTL (0: no claim)"),
        Option("etcd-claim-prefix", default="procx-claims/", sides=PROCX, group="retrieve", extension=True,
               advanced=True, help="claims are written at this prefix + the key taken (with -etcd-claim-ttl)"),
        Option("etcd-key", sides=PUSHX, help="key to write the payload to"),
        Option("etcd-limit", "int", sides=PUSHX, group="push", advanced=True,
               help="no effect (accepted for compatibility with the original)"),
    ],
    source="drivers.etcd:EtcdSource",
    sink="drivers.etcd:EtcdSink",
    extra="etcd",
    requires=("etcd3gw",),
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="the key stays until the clear op runs; with -etcd-claim-ttl a claim key under a lease (kept alive while "
             "the child runs) makes it exclusive, and a dead procx's claim expires after the TTL (an expired claim "
             "stops the child); without a claim two procx may take the same key",
        fail="-etcd-fail-op: rm, put or mv; empty: the key is left (and taken again)",
        pushx="put acknowledged by etcd (overwrites the key)",
        tested="real server: etcd 3.4 (Debian), through its v3 JSON gateway",
    ),
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _prefix_end(prefix: bytes) -> bytes:
    """The range end covering every key that starts with `prefix` (etcd's convention)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\x00"  # every key


def _endpoints(config) -> list[tuple[str, str, int]]:
    """(protocol, host, port) for each -etcd-hosts entry; the scheme defaults to https when TLS is on."""
    default = "https" if config[TLS.enable] else "http"
    found = []
    for raw in config["etcd-hosts"]:
        text = raw.strip()
        parts = urlsplit(text if "://" in text else f"{default}://{text}")
        try:
            port = parts.port or 2379
        except ValueError:
            raise UsageError(f"-etcd-hosts: bad endpoint {raw!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"-etcd-hosts: bad endpoint {raw!r} (use host:port or http(s)://host:port)")
        found.append((parts.scheme, parts.hostname, port))
    return found


def _session(config):
    """A requests session holding the TLS settings. They are applied by the adapter, because requests lets
    REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's own CA file."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    if config[TLS.enable]:
        verify = False if config[TLS.insecure] else (config[TLS.ca] or True)
        cert = (config[TLS.cert], config[TLS.key] or config[TLS.cert]) if config[TLS.cert] else None

        class Adapter(HTTPAdapter):
            def send(self, request, **kwargs):
                kwargs["verify"], kwargs["cert"] = verify, cert
                return super().send(request, **kwargs)

        session.mount("https://", Adapter())
        if verify is False:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return session


class _Client:
    """A connection to one etcd endpoint through etcd3gw: JSON calls with base64 keys, authentication and
    readable errors (never the password)."""

    def __init__(self, config) -> None:
        self.config = config
        self.gw: Any = None
        self.where = ""

    def open(self) -> None:
        import etcd3gw

        TLS.context(self.config)  # unreadable TLS files are usage errors, before any connection
        errors = []
        for protocol, host, port in _endpoints(self.config):
            gw = etcd3gw.Etcd3Client(host=host, port=port, protocol=protocol, api_path="/v3/",
                                     timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), session=_session(self.config))
            self.gw, self.where = gw, f"{host}:{port}"
            try:
                self.authenticate()
                self.call("maintenance/status", {})
                return
            except ProviderError as exc:
                if "authentication failed" in str(exc):
                    raise
                errors.append(str(exc).removeprefix("driver etcd: "))
                gw.session.close()
        self.gw = None
        if len(errors) == 1:
            raise ProviderError(f"driver etcd: {errors[0]}")
        raise ProviderError("driver etcd: no endpoint answered: " + "; ".join(errors))

    def authenticate(self) -> None:
        user, password = self.config["etcd-username"], self.config["etcd-password"]
        if not (user and password):
            return
        self.gw.session.headers.pop("Authorization", None)
        try:
            token = self.call("auth/authenticate", {"name": user, "password": password}, retry=False)["token"]
        except ProviderError as exc:
            reason = str(exc).split("auth/authenticate: ", 1)[-1]
            raise ProviderError(f"driver etcd: authentication failed for user {user!r} at {self.where} "
                                f"({reason})") from None
        self.gw.session.headers["Authorization"] = token

    def call(self, path: str, body: dict, *, retry: bool = True) -> dict:
        from etcd3gw import exceptions

        try:
            return self.gw.post(self.gw.get_url(path), json=body)
        except (exceptions.ConnectionFailedError, exceptions.ConnectionTimeoutError) as exc:
            reason = "timed out" if isinstance(exc, exceptions.ConnectionTimeoutError) else _short(exc)
            raise ProviderError(f"driver etcd: cannot reach {self.where}: {reason}") from None
        except exceptions.Etcd3Exception as exc:
            message = _error_text(exc)
            if retry and ("auth token" in message or "Unauthorized" in message) and self.config["etcd-username"]:
                self.authenticate()  # the token expired: log in again, once
                return self.call(path, body, retry=False)
            if "user name is empty" in message:
                message += " (the server wants -etcd-username and -etcd-password)"
            raise ProviderError(f"driver etcd: {self.where}: {path}: {message}") from None
        except OSError as exc:  # TLS failures and the like, from requests
            raise ProviderError(f"driver etcd: cannot reach {self.where}: {_short(exc)}") from None

    # -- key-value helpers -------------------------------------------------------------------------
    def range(self, key: bytes, end: bytes | None = None, limit: int = 0) -> list[dict]:
        body: dict[str, Any] = {"key": _b64(key), "sort_order": "ASCEND", "sort_target": "KEY"}
        if end is not None:
            body["range_end"] = _b64(end)
        if limit:
            body["limit"] = limit
        return self.call("kv/range", body).get("kvs", [])

    def put(self, key: bytes, value: bytes) -> None:
        self.call("kv/put", {"key": _b64(key), "value": _b64(value)})

    def txn(self, compare: list[dict], success: list[dict]) -> bool:
        return bool(self.call("kv/txn", {"compare": compare, "success": success, "failure": []}).get("succeeded"))

    def close(self) -> None:
        if self.gw is not None:
            with contextlib.suppress(Exception):
                self.gw.session.close()
            self.gw = None


def _error_text(exc: Exception) -> str:
    import json

    text = getattr(exc, "detail_text", "") or ""
    try:
        data = json.loads(text)
        return str(data.get("error") or data.get("message") or text)
    except ValueError:
        return text.strip() or " ".join(str(a) for a in exc.args) or type(exc).__name__


def _short(exc: BaseException) -> str:
    """The useful end of a requests/urllib3 error chain."""
    text = getattr(exc, "detail_text", None) or str(exc)
    for marker, said in (("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
                         ("certificate verify failed", "certificate verify failed"),
                         ("Connection refused", "connection refused"), ("timed out", "timed out"),
                         ("Name or service not known", "unknown host"), ("SSL", "TLS handshake failed")):
        if marker in text:
            return said
    return text[-200:] or type(exc).__name__


def _put(key: bytes, value: bytes, lease: int = 0) -> dict:
    req: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        req["lease"] = str(lease)
    return {"request_put": req}


def _delete(key: bytes) -> dict:
    return {"request_delete_range": {"key": _b64(key)}}


class _Claim:
    """One claimed key: the claim key under a lease, kept alive by a thread until released."""

    def __init__(self, client: _Client, claim_key: bytes, token: bytes, lease: int, ttl: int) -> None:
        self.client, self.key, self.token, self.lease, self.ttl = client, claim_key, token, lease, ttl
        self.stop = threading.Event()
        self.work: Work | None = None  # told when the claim's lease expires (Work.lose)
        self.thread = threading.Thread(target=self._keep_alive, name="etcd-claim", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _keep_alive(self) -> None:
        import requests

        gw = self.client.gw
        url = gw.get_url("lease/keepalive")
        with _session(self.client.config) as session:  # its own: the source's is used by the main thread
            session.headers.update(gw.session.headers)
            while not self.stop.wait(max(0.5, self.ttl / 3)):
                try:
                    resp = session.post(url, json={"ID": str(self.lease)}, timeout=(CONNECT_TIMEOUT, 10))
                    if resp.status_code == 401 and self.client.config["etcd-username"]:
                        self._login(session)  # the token expired: the next round uses a new one
                    ttl = int(resp.json().get("result", {}).get("TTL", 0)) if resp.ok else -1
                except (requests.RequestException, ValueError, KeyError):
                    ttl = -1  # the server may be back before the lease expires: keep trying
                if ttl == 0:  # the lease expired: another procx may take the key now
                    if self.work is not None:
                        self.work.lose(f"the claim on {self.work.id!r} expired: another procx may have taken it")
                    return

    def _login(self, session) -> None:
        c = self.client.config
        resp = session.post(self.client.gw.get_url("auth/authenticate"),
                            json={"name": c["etcd-username"], "password": c["etcd-password"]},
                            timeout=(CONNECT_TIMEOUT, 10))
        session.headers["Authorization"] = resp.json()["token"]

    def compare(self) -> dict:
        return {"key": _b64(self.key), "target": "VALUE", "result": "EQUAL", "value": _b64(self.token)}

    def release(self) -> None:
        self.stop.set()
        with contextlib.suppress(ProviderError):
            self.client.call("lease/revoke", {"ID": str(self.lease)})


class EtcdSource(Source):
    def open(self) -> None:
        self.client = _Client(self.config)
        self.client.open()
        c = self.config
        self.key = c["etcd-retrieve-key"].encode()
        self.end = _prefix_end(self.key) if c["etcd-with-prefix"] else None
        self.claim_ttl = int(-(-c["etcd-claim-ttl"] // 1))  # whole seconds, rounded up
        self.claims = c["etcd-claim-prefix"].encode()
        self.held: set[_Claim] = set()  # claims not yet released, released on close (the connection's state)

    def get(self, wait: float) -> Work | None:
        if not self.claim_ttl:
            kvs = self.client.range(self.key, self.end, limit=1)
            if not kvs:
                return None
            return self._work(kvs[0], None)
        return self._claim_next()

    def _work(self, kv: dict, claim: _Claim | None) -> Work:
        key = _unb64(kv.get("key"))
        return Work(_unb64(kv.get("value")), key.decode("utf-8", "replace"), handle=(key, _unb64(kv.get("value")),
                                                                                   claim))

    def _claim_next(self) -> Work | None:
        start = self.key
        lease = 0
        try:
            while True:
                kvs = self.client.range(start, self.end, limit=SCAN_BATCH if self.end is not None else 0)
                for kv in kvs:
                    key = _unb64(kv["key"])
                    if not lease:
                        granted = self.client.call("lease/grant", {"TTL": self.claim_ttl, "ID": 0})
                        lease = int(granted["ID"])
                    token = uuid.uuid4().hex.encode()
                    claim_key = self.claims + key
                    won = self.client.txn(
                        [{"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": kv["mod_revision"]},
                         {"key": _b64(claim_key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
                        [_put(claim_key, token, lease)])
                    if won:
                        claim = _Claim(self.client, claim_key, token, lease, self.claim_ttl)
                        lease = 0
                        claim.work = self._work(kv, claim)
                        claim.start()
                        self.held.add(claim)
                        return claim.work
                if self.end is None or len(kvs) < SCAN_BATCH:
                    return None
                start = _unb64(kvs[-1]["key"]) + b"\x00"
        finally:
            if lease:
                with contextlib.suppress(ProviderError):
                    self.client.call("lease/revoke", {"ID": str(lease)})

    def scale_depth(self, key: str) -> int:
        """The number stored at `key`: what KEDA's etcd scaler reads (it does not count keys)."""
        kvs = self.client.range(key.encode(), limit=1)
        text = _unb64(kvs[0].get("value")).decode(errors="replace").strip() if kvs else ""
        try:
            return int(float(text))
        except ValueError:
            what = f"holds {text[:40]!r}" if kvs else "does not exist"
            raise ProviderError(f"driver etcd: scale key {key!r} {what}: KEDA's etcd scaler needs a number "
                                "there") from None

    def clear(self, work: Work) -> None:
        self._apply("clear", work)

    def fail(self, work: Work) -> None:
        self._apply("fail", work)

    def _apply(self, phase: str, work: Work) -> None:
        from core.template import fill, substitute

        key, value, claim = work.handle
        c = self.config
        op = c[f"etcd-{phase}-op"]
        template = c[f"etcd-{phase}-key"]
        target = substitute(template, {"key": key.decode("utf-8", "replace")}).encode() if template else key
        val = c[f"etcd-{phase}-val"]
        ops: list[dict] = []
        if op == "rm":
            ops = [_delete(target)]
        elif op == "put":
            ops = [_put(target, fill(val, value).encode())]
        elif op == "mv":
            ops = [_put(target, fill(val, value).encode() if val else value)]
            if target != key:
                ops.append(_delete(key))
        if claim is None:
            if ops:
                self.client.txn([], ops)
            return
        try:
            if not self.client.txn([claim.compare()], [*ops, _delete(claim.key)]):
                if phase == "fail" and work.lost:
                    return  # another procx may have the key now: theirs to finish
                raise ProviderError(f"driver etcd: lost the claim on {work.id!r} (its lease expired, another procx "
                                    f"may have taken it): not {phase}ed here")
        finally:
            claim.release()
            self.held.discard(claim)

    def close(self) -> None:
        for claim in list(getattr(self, "held", ())):
            claim.release()  # unfinished work: give it back now rather than after the TTL
        client = getattr(self, "client", None)
        if client is not None:
            client.close()


class EtcdSink(Sink):
    def open(self) -> None:
        self.client = _Client(self.config)
        self.client.open()

    def push(self, payload: bytes) -> str | None:
        key = self.config["etcd-key"]
        self.client.put(key.encode(), payload)
        return key

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()

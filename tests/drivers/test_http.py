"""http: the conformance suite against a small work-queue server (http.server in a thread, HTTP and HTTPS),
plus headers, bodies, status codes, selectors, `{{key}}` substitution, timeouts, TLS and errors."""

from __future__ import annotations

import itertools
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from core import api
from core.errors import ProviderError
from tests.conformance import Backend, Conformance
from tests.support import run

# ---------------------------------------------------------------------------------------------- the server


@dataclass
class Job:
    id: str
    body: bytes
    leased_until: float = 0.0
    attempts: int = 0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WorkQueue:
    """Queues of jobs behind a small REST API; a job handed out is leased and comes back when the lease ends.

    POST   /q/NAME                    enqueue the body (201, {"id": ...})
    GET    /q/NAME/next[?lease=S]     the oldest available job as the raw body, its id in X-Job-Id (204: none)
    GET    /q/NAME/next.json          the same as JSON: {"job": {"id": ..., "work": ...}} or {"job": null}
    DELETE /q/NAME/jobs/ID            clear (204; 404 if unknown)
    POST   /q/NAME/jobs/ID/release    fail: available again at once (204; 404 if unknown)
    ANY    /status/CODE               answers CODE (with the body "status CODE")
    ANY    /echo                      200, the request's body; GET /slow sleeps 2 s first; GET /empty 200 empty
    """

    queues: dict[str, list[Job]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def pending(self, name: str) -> int:
        with self.lock:
            return len(self.queues.get(name, []))

    def put(self, name: str, body: bytes) -> str:
        with self.lock:
            job = Job(str(next(self.ids)), body)
            self.queues.setdefault(name, []).append(job)
            return job.id

    def take(self, name: str, lease: float) -> Job | None:
        now = time.monotonic()
        with self.lock:
            for job in self.queues.get(name, []):
                if job.leased_until <= now:
                    job.leased_until, job.attempts = now + lease, job.attempts + 1
                    return job
        return None

    def finish(self, name: str, job_id: str, remove: bool) -> bool:
        with self.lock:
            for job in self.queues.get(name, []):
                if job.id == job_id:
                    if remove:
                        self.queues[name].remove(job)
                    else:
                        job.leased_until = 0.0
                    return True
        return False

    def requests(self, path_prefix: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path.startswith(path_prefix)]


def make_handler(wq: WorkQueue) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            with wq.lock:
                wq.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            parts = [unquote(p) for p in url.path.split("/")[1:]]
            query = parse_qs(url.query)
            match self.command, parts:
                case ("POST", ["q", name]):
                    job_id = wq.put(name, body)
                    self._answer(201, json.dumps({"id": job_id}).encode(), {"Content-Type": "application/json"})
                case ("GET", ["q", name, "next"]):
                    job = wq.take(name, float(query.get("lease", ["30"])[0]))
                    if job is None:
                        self._answer(204)
                    else:
                        self._answer(200, job.body, {"X-Job-Id": job.id, "X-Attempt": str(job.attempts)})
                case ("GET", ["q", name, "next.json"]):
                    job = wq.take(name, float(query.get("lease", ["30"])[0]))
                    doc = {"job": None} if job is None else {"job": {"id": job.id, "work": job.body.decode()}}
                    self._answer(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
                case ("DELETE", ["q", name, "jobs", job_id]):
                    self._answer(204 if wq.finish(name, job_id, remove=True) else 404)
                case ("POST", ["q", name, "jobs", job_id, "release"]):
                    self._answer(204 if wq.finish(name, job_id, remove=False) else 404)
                case (_, ["status", code]):
                    self._answer(int(code), f"status {code}".encode())
                case (_, ["echo"]):
                    self._answer(200, body)
                case ("GET", ["slow"]):
                    time.sleep(2)
                    self._answer(200, b"late")
                case ("GET", ["empty"]):
                    self._answer(200)
                case _:
                    self._answer(404, b"no such route")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    return Handler


@dataclass
class Server:
    wq: WorkQueue
    url: str
    port: int


def serve(wq: WorkQueue, ctx: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(wq))
    httpd.daemon_threads = True
    if ctx is not None:
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, name="test-http-server", daemon=True).start()
    port = httpd.server_address[1]
    return httpd, Server(wq, f"{'https' if ctx else 'http'}://127.0.0.1:{port}", port)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd, srv = serve(WorkQueue())
    yield srv
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def tls_server(tls_cert) -> Iterator[Server]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_cert.cert, tls_cert.key)
    httpd, srv = serve(WorkQueue(), ctx)
    yield srv
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def mtls_server(tls_cert) -> Iterator[Server]:
    """HTTPS that requires a client certificate signed by the test CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_cert.cert, tls_cert.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(tls_cert.cert)
    httpd, srv = serve(WorkQueue(), ctx)
    yield srv
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------------------------------------- conformance
class HttpBackend(Backend):
    driver = "http"
    supports_empty = False  # an empty body (or 204) means no work
    redelivery_wait = 1.0  # the server's lease

    def __init__(self, srv: Server, name: str) -> None:
        self.srv, self.name = srv, name

    def common_args(self) -> list[str]:
        return ["-driver", "http"]

    def push_args(self, n: int) -> list[str]:
        return ["-http-url", f"{self.srv.url}/q/{self.name}"]

    def procx_args(self) -> list[str]:
        q = f"{self.srv.url}/q/{self.name}"
        return ["-http-retrieve-url", f"{q}/next?lease=1", "-http-retrieve-key-header", "X-Job-Id",
                "-http-clear-url", f"{q}/jobs/{{{{key}}}}", "-http-clear-method", "DELETE",
                "-http-fail-url", f"{q}/jobs/{{{{key}}}}/release", "-http-fail-method", "POST"]

    def pending(self) -> int:
        return self.srv.wq.pending(self.name)


class TestHttpConformance(Conformance):
    @pytest.fixture
    def backend(self, server: Server, unique: str) -> HttpBackend:
        return HttpBackend(server, f"conf-{unique}")


# ---------------------------------------------------------------------------------------------- procx side
def json_queue(srv: Server, name: str, *extra: str) -> list[str]:
    q = f"{srv.url}/q/{name}"
    return ["-driver", "http", "-http-retrieve-url", f"{q}/next.json", "-http-retrieve-key-json-selector", "job.id",
            "-http-retrieve-work-json-selector", "job.work", "-http-clear-url", f"{q}/jobs/{{{{key}}}}",
            "-http-clear-method", "DELETE", *extra]


def test_json_selectors_pick_payload_and_key(server: Server, unique: str) -> None:
    name = f"sel-{unique}"
    server.wq.put(name, b'{"nested": "json job"}')
    done = run("procx", *json_queue(server, name), "sh", "-c", 'printf %s "$PROCX_PAYLOAD"')
    assert (done.returncode, done.stdout) == (0, b'{"nested": "json job"}')
    assert server.wq.pending(name) == 0


def test_work_selector_selecting_null_is_no_work(server: Server, unique: str) -> None:
    done = run("procx", *json_queue(server, f"none-{unique}"), "false")
    assert (done.returncode, done.stdout) == (0, b"")


@pytest.mark.parametrize("path", ["/q/never-filled/next", "/empty"])
def test_204_or_an_empty_body_is_no_work(server: Server, path: str) -> None:
    done = run("procx", "-driver", "http", "-http-retrieve-url", server.url + path, "false")
    assert (done.returncode, done.stdout) == (0, b"")


def test_key_substitution_per_item_in_url_and_body_without_leaks(server: Server, unique: str) -> None:
    name = f"tpl-{unique}"
    ids = [server.wq.put(name, f"job {i}".encode()) for i in range(3)]
    q = f"{server.url}/q/{name}"
    opts = ["-driver", "http", "-http-retrieve-url", f"{q}/next", "-http-retrieve-key-header", "X-Job-Id",
            "-http-clear-url", f"{q}/jobs/{{{{key}}}}", "-http-clear-method", "DELETE",
            "-http-clear-content-type", "application/json", "-http-clear-body", '{"done":"{{key}}"}']
    for work in api.consume(opts):
        work.clear()
    cleared = server.wq.requests(f"/q/{name}/jobs/")
    assert [(s.method, s.path, s.body) for s in cleared] == [
        ("DELETE", f"/q/{name}/jobs/{i}", f'{{"done":"{i}"}}'.encode()) for i in ids]
    assert all(s.headers["Content-Type"] == "application/json" for s in cleared)
    assert server.wq.pending(name) == 0


def test_fail_request_with_a_key_and_no_body(server: Server, unique: str) -> None:
    """The original crashed here (fail with a key selector but no fail body)."""
    name = f"failnb-{unique}"
    server.wq.put(name, b'"x"')
    q = f"{server.url}/q/{name}"
    done = run("procx", *json_queue(server, name, "-http-fail-url", f"{q}/jobs/{{{{key}}}}/release",
                                    "-http-fail-method", "post"), "false")
    assert done.returncode == 1
    [release] = server.wq.requests(f"/q/{name}/jobs/")
    assert (release.method, release.body) == ("POST", b"")
    assert server.wq.take(name, 1) is not None  # available again at once


def test_keys_are_url_encoded_in_urls(server: Server, unique: str) -> None:
    name = f"enc-{unique}"
    doc = json.dumps({"id": "a/../b?x=1 &", "work": "w"})
    server.wq.put(name, doc.encode())
    opts = ["-driver", "http", "-http-retrieve-url", f"{server.url}/q/{name}/next",
            "-http-retrieve-key-json-selector", "id", "-http-retrieve-work-json-selector", "work",
            "-http-clear-url", f"{server.url}/echo/{{{{key}}}}", "-http-clear-successful-status-codes", "404"]
    assert api.procx(opts) == b"w"
    [seen] = server.wq.requests("/echo/")
    assert seen.path == "/echo/a%2F..%2Fb%3Fx%3D1%20%26"


def test_headers_keep_colons_and_commas(server: Server) -> None:
    opts = ["-driver", "http", "-http-retrieve-url", f"{server.url}/echo", "-http-retrieve-method", "POST",
            "-http-retrieve-body", "req", "-http-retrieve-headers",
            "Authorization:Bearer a:b,X-Url:http://h:1/p,X-List:a,b,X-Trace: 7"]
    assert api.procx(opts) == b"req"
    seen = server.wq.requests("/echo")[-1]
    assert seen.headers["Authorization"] == "Bearer a:b"
    assert seen.headers["X-Url"] == "http://h:1/p"
    assert seen.headers["X-List"] == "a,b"
    assert seen.headers["X-Trace"] == "7"


def test_bodies_from_files_are_sent_every_time(server: Server, tmp_path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'{"want": "work"}')
    opts = ["-driver", "http", "-http-retrieve-url", f"{server.url}/echo", "-http-retrieve-method", "PUT",
            "-http-retrieve-body-file", str(body)]
    for _ in range(2):  # the original sent an empty body from the second request on
        assert api.procx(opts) == b'{"want": "work"}'


def test_body_wins_over_body_file(server: Server, tmp_path) -> None:
    (tmp_path / "b").write_bytes(b"file")
    opts = ["-driver", "http", "-http-retrieve-url", f"{server.url}/echo", "-http-retrieve-method", "POST",
            "-http-retrieve-body", "flag", "-http-retrieve-body-file", str(tmp_path / "b")]
    assert api.procx(opts) == b"flag"


@pytest.mark.parametrize(("extra", "status"), [
    ((), 500),
    (("-http-retrieve-successful-status-codes", "200"), 201),
])
def test_retrieve_status_outside_success_is_an_error(server: Server, tmp_path, extra, status) -> None:
    marker = tmp_path / "ran"
    done = run("procx", "-driver", "http", "-http-retrieve-url", f"{server.url}/status/{status}", *extra,
               "touch", str(marker))
    assert done.returncode == 69
    assert f"returned status {status}".encode() in done.stderr
    assert not marker.exists()


def test_clear_status_is_enforced(server: Server, unique: str) -> None:
    name = f"clr-{unique}"
    server.wq.put(name, b"job")
    q = f"{server.url}/q/{name}"
    opts = ["-driver", "http", "-http-retrieve-url", f"{q}/next?lease=60", "-http-retrieve-key-header", "X-Job-Id",
            "-http-clear-url", f"{server.url}/status/503"]
    done = run("procx", *opts, "true")
    assert done.returncode == 69
    assert b"clear: GET " in done.stderr and b"returned status 503 (success: 2xx): status 503" in done.stderr
    assert server.wq.pending(name) == 1  # not cleared: it comes back when its lease ends


def test_clear_with_custom_success_codes(server: Server, unique: str) -> None:
    name = f"codes-{unique}"
    server.wq.put(name, b"job")
    q = f"{server.url}/q/{name}"
    opts = ["-driver", "http", "-http-retrieve-url", f"{q}/next", "-http-retrieve-key-header", "X-Job-Id",
            "-http-clear-url", f"{q}/jobs/{{{{key}}}}", "-http-clear-method", "DELETE",
            "-http-clear-successful-status-codes", "200,202"]
    done = run("procx", *opts, "true")
    assert done.returncode == 69  # the server answered 204
    assert b"returned status 204 (success: 200,202)" in done.stderr


def test_missing_key_header_is_an_error(server: Server, unique: str) -> None:
    done = run("procx", "-driver", "http", "-http-retrieve-url", f"{server.url}/echo", "-http-retrieve-method", "POST",
               "-http-retrieve-body", "x", "-http-retrieve-key-header", "X-Job-Id", "-http-clear-url",
               f"{server.url}/q/x/jobs/{{{{key}}}}", "true")
    assert done.returncode == 69
    assert b"the response has no X-Job-Id header" in done.stderr


def test_timeout(server: Server) -> None:
    done = run("procx", "-driver", "http", "-http-retrieve-url", f"{server.url}/slow", "-http-timeout", "0.3s",
               timeout=20)  # well before the default 30 s
    assert done.returncode == 69
    assert b"no answer within 0.3s" in done.stderr  # the option was applied


def test_url_credentials_become_basic_auth_and_are_never_shown(server: Server) -> None:
    url = server.url.replace("http://", "http://joe:S3cr%40t@")
    assert api.procx(["-driver", "http", "-http-retrieve-url", f"{url}/echo", "-http-retrieve-method", "POST",
                      "-http-retrieve-body", "a"]) == b"a"
    assert server.wq.requests("/echo")[-1].headers["Authorization"] == "Basic am9lOlMzY3JAdA=="
    done = run("procx", "-driver", "http", "-http-retrieve-url", f"{url}/status/418")
    assert done.returncode == 69
    assert b"S3cr" not in done.stderr and b"joe" not in done.stderr


def test_unreachable_server_names_host_and_port() -> None:
    done = run("procx", "-driver", "http", "-http-retrieve-url", "http://127.0.0.1:1/next")
    assert done.returncode == 69
    assert done.stderr == (b"procx: driver http: cannot reach 127.0.0.1:1 (GET http://127.0.0.1:1/next): "
                           b"Connection refused\n")


@pytest.mark.parametrize(("extra", "message"), [
    ((), b"-http-retrieve-url is required"),
    (("-http-retrieve-url", "ftp://x/y"), b"-http-retrieve-url: expected an http:// or https:// URL"),
    (("-http-retrieve-url", "http://h/", "-http-retrieve-successful-status-codes", "200,ok"),
     b"-http-retrieve-successful-status-codes: status codes must be numbers"),
    (("-http-retrieve-url", "http://h/", "-http-clear-headers", "Bad Name:x"), b"bad header name"),
    (("-http-retrieve-url", "http://h/", "-http-fail-url", "http://h/{{key}}"),
     b"use {{key}}: set -http-retrieve-key-json-selector or -http-retrieve-key-header"),
    (("-http-retrieve-url", "http://h/", "-http-tls-insecure"), b"-http-tls-insecure has no effect without"),
    (("-http-retrieve-url", "http://h/", "-http-timeout", "0"), b"-http-timeout: must be positive"),
    (("-http-retrieve-url", "http://h/", "-http-retrieve-body-file", "/nonexistent/b"),
     b"-http-retrieve-body-file: cannot read /nonexistent/b"),
])
def test_bad_settings_are_usage_errors(extra: tuple[str, ...], message: bytes) -> None:
    done = run("procx", "-driver", "http", *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


# ---------------------------------------------------------------------------------------------- pushx side
def test_pushx_method_headers_and_content_type(server: Server) -> None:
    done = run("pushx", "-driver", "http", "-http-url", f"{server.url}/echo", "-http-method", "put",
               "-http-content-type", "application/octet-stream", "-http-headers", "X-A:1:2", input=b"\x00\xff")
    assert done.returncode == 0, done.stderr
    seen = server.wq.requests("/echo")[-1]
    assert (seen.method, seen.body) == ("PUT", b"\x00\xff")
    assert seen.headers["Content-Type"] == "application/octet-stream" and seen.headers["X-A"] == "1:2"


def test_pushx_variables_of_the_original(server: Server, unique: str) -> None:
    from tests.support import clean_env

    env = clean_env(PUSHX_HTTP_REQUEST_URL=f"{server.url}/q/var-{unique}", PUSHX_HTTP_REQUEST_METHOD="POST",
                    PUSHX_HTTP_REQUEST_SUCCESSFUL_STATUS_CODES="201")
    assert run("pushx", "-driver", "http", "-in", "v", env=env).returncode == 0
    assert server.wq.pending(f"var-{unique}") == 1


@pytest.mark.parametrize(("status", "codes", "ok"), [(500, "", False), (404, "", False), (201, "", True),
                                                     (404, "404", True), (200, "201,202", False)])
def test_pushx_success_is_2xx_unless_configured(server: Server, status: int, codes: str, ok: bool) -> None:
    extra = ("-http-successful-status-codes", codes) if codes else ()
    done = run("pushx", "-driver", "http", "-http-url", f"{server.url}/status/{status}", *extra, "-in", "d",
               "-out", "-")
    assert done.returncode == (0 if ok else 69), done.stderr
    assert done.stdout == (b"d" if ok else b"")  # passed on only after the push succeeded
    if not ok:
        assert f"push: POST {server.url}/status/{status} returned status {status}".encode() in done.stderr


def test_pushx_unreachable() -> None:
    done = run("pushx", "-driver", "http", "-http-url", "http://127.0.0.1:1/x", "-in", "d")
    assert done.returncode == 69
    assert b"cannot reach 127.0.0.1:1" in done.stderr


# ---------------------------------------------------------------------------------------------- TLS
def test_tls_with_a_ca_file(tls_server: Server, tls_cert, unique: str) -> None:
    tls = ("-http-enable-tls", "-http-tls-ca-file", str(tls_cert.cert))
    name = f"tls-{unique}"
    assert run("pushx", "-driver", "http", "-http-url", f"{tls_server.url}/q/{name}", *tls, "-in", "s").returncode \
        == 0
    assert api.procx(["-driver", "http", "-http-retrieve-url", f"{tls_server.url}/q/{name}/next", *tls]) == b"s"


def test_tls_untrusted_fails_and_insecure_works(tls_server: Server, tls_cert) -> None:
    url = f"{tls_server.url}/echo"
    done = run("pushx", "-driver", "http", "-http-url", url, "-in", "x")  # system CAs: not trusted
    assert done.returncode == 69
    assert f"cannot reach 127.0.0.1:{tls_server.port} (POST {url}): certificate verify failed".encode() \
        in done.stderr
    done = run("pushx", "-driver", "http", "-http-url", url, "-http-enable-tls", "-http-tls-ca-file",
               str(tls_cert.other_ca), "-in", "x")
    assert done.returncode == 69
    done = run("pushx", "-driver", "http", "-http-url", url, "-http-enable-tls", "-http-tls-insecure", "-in", "x")
    assert done.returncode == 0, done.stderr  # the original ignored -http-tls-insecure


def test_tls_client_certificate(mtls_server: Server, tls_cert) -> None:
    base = ["-driver", "http", "-http-url", f"{mtls_server.url}/echo", "-http-enable-tls", "-http-tls-ca-file",
            str(tls_cert.cert)]
    assert run("pushx", *base, "-in", "x").returncode == 69
    done = run("pushx", *base, "-http-tls-cert-file", str(tls_cert.cert), "-http-tls-key-file", str(tls_cert.key),
               "-in", "x")
    assert done.returncode == 0, done.stderr


def test_api_errors_are_provider_errors(server: Server) -> None:
    with pytest.raises(ProviderError, match="returned status 500"):
        api.pushx(b"x", ["-driver", "http", "-http-url", f"{server.url}/status/500"])

"""What several drivers share: option builders for their declarations (TLS switches, object selection, mv/rm
ops), the lease Keeper and the ClientConnection base of a client library's connection."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from core.errors import ProcxError, ProviderError, one_line
from core.options import BOTH, PROCX, PUSHX, Option

if TYPE_CHECKING:
    import ssl

    from core.settings import Config


class Tls:
    """A driver's TLS switch set, declared once: `-<prefix>-enable-tls`, `-…-tls-insecure`, CA, cert and key
    files (names adjustable for the originals' irregular spellings). `options()` declares them; `context(config)`
    builds the ssl.SSLContext (None when TLS is off), as the originals' TLS helper does."""

    def __init__(self, prefix: str, *, enable: str = "enable-tls", insecure: str | None = "tls-insecure",
                 ca: str = "tls-ca-file", cert: str = "tls-cert-file", key: str = "tls-key-file",
                 sides: frozenset[str] | str = BOTH, insecure_env: dict[str, str] | None = None) -> None:
        self.enable = f"{prefix}-{enable}"
        self.insecure = f"{prefix}-{insecure}" if insecure else None
        self.ca, self.cert, self.key = f"{prefix}-{ca}", f"{prefix}-{cert}", f"{prefix}-{key}"
        self.sides = sides
        self.insecure_env = insecure_env

    def options(self) -> list[Option]:
        opts = [Option(self.enable, "bool", help="connect with TLS", sides=self.sides)]
        if self.insecure:
            opts.append(Option(self.insecure, "bool", help="skip TLS certificate verification", sides=self.sides,
                               env=self.insecure_env))
        return opts + [
            Option(self.ca, help="CA certificate file (PEM) to trust", sides=self.sides, placeholder="PATH"),
            Option(self.cert, help="client certificate file (PEM)", sides=self.sides, placeholder="PATH"),
            Option(self.key, help="client private key file (PEM)", sides=self.sides, placeholder="PATH"),
        ]

    def validate(self, config) -> None:
        """TLS files or switches given while TLS is off are an error (the originals ignored them silently)."""
        if not config[self.enable]:
            given = [n for n in (self.insecure, self.ca, self.cert, self.key) if n and config[n]]
            if given:
                raise ValueError(f"-{given[0]} has no effect without -{self.enable}")
        elif config[self.key] and not config[self.cert]:
            raise ValueError(f"-{self.key} needs -{self.cert}")

    def context(self, config) -> ssl.SSLContext | None:
        """The TLS context the settings ask for; None when TLS is off. Unreadable files are usage errors."""
        if not config[self.enable]:
            return None
        import ssl

        from core.errors import UsageError

        try:
            ctx = ssl.create_default_context(cafile=config[self.ca] or None)
            if self.insecure and config[self.insecure]:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if config[self.cert]:
                ctx.load_cert_chain(config[self.cert], config[self.key] or None)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"-{self.enable}: cannot load the TLS files: {exc}") from None
        return ctx


def tls_options(prefix: str, **names: object) -> list[Option]:
    """The options of `Tls(prefix, **names)` (for drivers that do not build a context themselves)."""
    return Tls(prefix, **names).options()  # type: ignore[arg-type]


def selector_options(prefix: str, what: str = "key", *, key_sides: frozenset[str] | str = PROCX) -> list[Option]:
    """Exact key (also pushx's target where `key_sides` says so), prefix and regex selectors (procx)."""
    sides = PROCX
    return [
        Option(f"{prefix}-{what}", help=f"exact {what} of the work item (pushx: the {what} to write)",
               sides=key_sides),
        Option(f"{prefix}-{what}-prefix", help=f"take the first {what} (in order) starting with this prefix",
               sides=sides, group="retrieve"),
        Option(f"{prefix}-{what}-regex", help=f"take the first {what} (in order) matching this regular expression",
               sides=sides, group="retrieve"),
    ]


def check_selection(config, prefix: str, what: str, target: str) -> None:
    """procx's rules for the selector_options/move_ops family: one selector set, a regex that compiles, and the
    mv destination `target` given whenever an op is mv (ValueError naming the flags)."""
    import re

    names = [f"{prefix}-{what}", f"{prefix}-{what}-prefix", f"{prefix}-{what}-regex"]
    if not any(config[n] for n in names):
        raise ValueError(f"-{names[0]}, -{names[1]} or -{names[2]}: one is required")
    if config[names[2]]:
        try:
            re.compile(config[names[2]])
        except re.error as exc:
            raise ValueError(f"-{names[2]}: invalid regular expression ({exc})") from None
    for phase in ("clear", "fail"):
        if config[f"{prefix}-{phase}-op"] == "mv" and not config[f"{prefix}-{phase}-{target}"]:
            raise ValueError(f"-{prefix}-{phase}-{target} is required with -{prefix}-{phase}-op mv")


def move_ops(prefix: str, target: str) -> list[Option]:
    """`-<prefix>-{clear,fail}-op` (mv|rm) with the mv destination `target` (bucket/folder), key and key template."""
    opts = []
    for phase, when in (("clear", "after success"), ("fail", "after failure")):
        opts += [
            Option(f"{prefix}-{phase}-op", help=f"what to do with the item {when}: mv or rm (empty: leave it)",
                   sides=PROCX, choices=("mv", "rm")),
            Option(f"{prefix}-{phase}-{target}", help=f"{target} to move the item to {when} (required for mv)",
                   sides=PROCX),
            Option(f"{prefix}-{phase}-key", help=f"key to move the item to {when} (default: the item's key)",
                   sides=PROCX),
            Option(f"{prefix}-{phase}-key-template",
                   help=f"key template for mv {when}; {{{{key}}}} is the item's key (wins over the key)",
                   sides=PROCX),
        ]
    return opts


def query_options(prefix: str, language: str, placeholders: str, *, retrieve_required: bool = False,
                  pushx_params_env: str = "") -> list[Option]:
    """The SQL/CQL family's statements: procx's retrieve/clear/fail query, params and field; pushx's query and
    params (`pushx_params_env`: the original's irregular variable for the params)."""
    ph = f"placeholders {placeholders}"
    opts = [
        Option(f"{prefix}-retrieve-query", sides=PROCX, required=retrieve_required,
               help=f"{language} returning the work rows (limit it yourself, e.g. LIMIT 1); {ph}"),
        Option(f"{prefix}-retrieve-params", "list", sides=PROCX,
               help="comma-separated literal values bound to the retrieve query's placeholders"),
        Option(f"{prefix}-retrieve-field", sides=PROCX,
               help="GJSON path into the rows JSON used as payload (default: all rows); empty result = no work"),
    ]
    for phase, when in (("clear", "after success"), ("fail", "after failure")):
        opts += [
            Option(f"{prefix}-{phase}-query", sides=PROCX, help=f"{language} run {when} (empty: nothing); {ph}"),
            Option(f"{prefix}-{phase}-params", "list", sides=PROCX,
                   help=f"comma-separated params of the {phase} query; {{{{0.col}}}} takes a retrieved value, "
                        "{{procx_payload}} the rows JSON"),
        ]
    return opts + [
        Option(f"{prefix}-query", sides=PUSHX,
               help=f"{language} run once with the payload (empty: nothing is written); {ph}"),
        Option(f"{prefix}-params", "list", sides=PUSHX, env={PUSHX: pushx_params_env} if pushx_params_env else None,
               help="comma-separated query params; {{path}} takes a field of the JSON payload, "
                    "{{pushx_payload}} the whole payload"),
    ]


class Keeper:
    """Keeps the leases of the items a Source holds alive while their children run.

    A background thread calls `renew(handle)` for every held item every `interval` seconds; when procx dies
    the thread dies with it and the leases expire, so the items come back. Errors are ignored (the next
    round retries; a lease that could not be renewed in time simply expires: at-least-once).
    """

    def __init__(self, interval: float, renew: Callable[[object], object]) -> None:
        self.interval = max(0.05, interval)
        self.renew = renew
        self.held: dict[int, object] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.tokens = itertools.count(1)

    def hold(self, handle: object) -> int:
        token = next(self.tokens)
        with self.lock:
            self.held[token] = handle
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="procx-lease", daemon=True)
                self.thread.start()
        return token

    def release(self, token: int) -> None:
        with self.lock:
            self.held.pop(token, None)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                handles = list(self.held.values())
            for handle in handles:
                if self.stop.is_set():
                    return
                with contextlib.suppress(Exception):
                    self.renew(handle)

    def close(self) -> None:
        self.stop.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)


class ClientConnection:
    """A client library's client for a driver's settings (elasticsearch, mongodb): `open` sets `client`; `errors`
    turns the library's exceptions into one-line ProviderErrors naming `where` (host:port), never a secret."""

    # the usual causes of a failed connection, said in a few words (the first marker found in the message wins)
    CAUSES = (("Connection refused", "connection refused"), ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
              ("Name or service not known", "unknown host"), ("timed out", "timed out"))

    def __init__(self, config: Config, where: str) -> None:
        self.config = config
        self.where = where
        self.client: Any = None

    def secrets(self) -> tuple[str, ...]:
        """The passwords a message from the library may repeat."""
        return ()

    def clean(self, text: str) -> str:
        """The text with every secret replaced by ***."""
        for secret in self.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    def cause(self, text: str) -> str:
        """Why a connection failed: a usual cause in a few words, else the library's message in one clean line."""
        for marker, said in self.CAUSES:
            if marker in text:
                return said
        return self.clean(one_line(text, 200))

    def translate(self, exc: Exception, what: str) -> ProviderError | None:
        """The ProviderError for one of the library's exceptions raised while doing `what` (None: not one)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """The library's exceptions -> their ProviderErrors (see translate); any other passes through."""
        try:
            yield
        except ProcxError:
            raise
        except Exception as exc:
            error = self.translate(exc, what)
            if error is None:
                raise
            raise error from None

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None

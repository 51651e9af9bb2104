"""smb: files on an SMB2/3 share are the work (procx); pushx writes a file there.

Speaks SMB2/3 through smbprotocol's smbclient, with a connection cache of its own per Source/Sink (never the
library's process-wide one). Fixes over the original (procx.md §4.34, §3.5, §7.3 #21-22, §7.5 #33, §7.7 #52;
pushx.md §4.23), the selection and ops being drivers/files.py's:
- a glob matching nothing is "no work" (the original exited with `no matches`); a missing -smb-key too;
- the first match in lexical order over every nested name (Go path.Match syntax: `*` and `?` stay within one
  `/`-separated part, so `*.txt` is the share's top level and `*/*.txt` one level down);
- {{key}} in a key template is the file's base name (after its last `/` or `\\`; the original split on `\\`
  only, and glob results use `/`, so it got the whole path);
- the selected key and the mv target do not stick across a daemon's items; mv without a target (a rename of
  the file onto itself) is a usage error; files an mv produces are not taken as work again; mv replaces an
  existing target;
- pushx writes atomically (temporary name in the same directory, then renamed over the target);
- a refused login or an unreachable server is one line naming host:port and the user, never the password.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator

from core.errors import ProcxError, ProviderError, one_line
from core.options import PROCX, Delivery, DriverSpec, Option
from drivers.files import FileSink, FileSource, Selector, Tree, check_files, glob_regex, glob_selector

NAME = "smb"
CONNECT_TIMEOUT = 10


def _phase_options(phase: str, when: str) -> list[Option]:
    return [
        Option(f"smb-{phase}-op", sides=PROCX, choices=("mv", "rm"),
               help=f"what to do with the file {when}: mv (rename within the share) or rm (empty: leave it)"),
        Option(f"smb-{phase}-key", sides=PROCX,
               help=f"path within the share to rename the file to {when} (mv needs it or the template)"),
        Option(f"smb-{phase}-key-template", sides=PROCX,
               help=f"rename target {when}; {{{{key}}}} = the file's base name (after its last / or \\), e.g. "
                    "done/{{key}} (wins over -key)"),
    ]


def _validate(config) -> None:
    if not 0 < config["smb-port"] < 65536:
        raise ValueError(f"-smb-port: {config['smb-port']} is not a TCP port (1-65535)")
    if not str(config["smb-share"]).strip("/\\"):
        raise ValueError("-smb-share is required: the name of the share")
    if config.side == PROCX:
        if not (config["smb-key"] or config["smb-key-glob"]):
            raise ValueError("-smb-key or -smb-key-glob: one is required")
        if config["smb-key-glob"]:
            try:
                glob_regex(config["smb-key-glob"])
            except ValueError as exc:
                raise ValueError(f"-smb-key-glob: invalid pattern ({exc})") from None
    check_files(config, NAME, folders=False)


SPEC = DriverSpec(
    "smb",
    "files on an SMB share: each file is one unit of work",
    [
        Option("smb-host", help="SMB server host name", required=True),
        Option("smb-port", "int", 445, help="SMB server port"),
        Option("smb-user", required=True,
               help="NTLM user name (the original allowed none; anonymous logins are not supported here)"),
        Option("smb-pass", help="NTLM password", secret=True),
        Option("smb-share", help="share to mount", required=True),
        Option("smb-key", required="pushx",
               help="exact path of the file within the share (pushx: the file to write, parent folders created)"),
        Option("smb-key-glob", sides=PROCX, group="retrieve",
               help="take the first path (in lexical order, at any depth) matching this glob (*, ?, [...]; * stays "
                    "within one folder)"),
        *_phase_options("clear", "after success"),
        *_phase_options("fail", "after failure"),
    ],
    source="drivers.smb:SmbSource",
    sink="drivers.smb:SmbSink",
    validate=_validate,
    extra="smb",
    requires=("smbclient",),
    blocking=False,
    delivery=Delivery(
        "at-least-once",
        hold="none: SMB files carry no lease; the file stays in place until cleared (a dead procx leaves it "
             "there). Two procx on one share may take the same file and both run it; the later clear finds it "
             "gone and lets it be",
        fail="-smb-fail-op: mv (rename within the share), rm, or left in place (offered again)",
        pushx="atomic: written to a temporary name, then renamed over the target",
        tested="real server: Samba 4.17.12 smbd (NTLM login) through smbprotocol 1.17.0",
    ),
)


class ShareTree(Tree):
    """One share of an SMB server, through smbclient with a connection cache of its own."""

    def __init__(self, config) -> None:
        import smbclient
        import smbclient.path

        self.smb = smbclient
        self.host, self.port, self.user = config["smb-host"], config["smb-port"], config["smb-user"]
        self.driver, self.where = NAME, f"{self.host}:{self.port}"
        self.share = str(config["smb-share"]).strip("/\\")
        self.cache: dict = {}
        self.kwargs = {"port": self.port, "connection_cache": self.cache}
        try:
            with self.guard("log in"):
                self.smb.register_session(self.host, username=self.user, password=config["smb-pass"],
                                          connection_timeout=CONNECT_TIMEOUT, auth_protocol="ntlm", **self.kwargs)
            with self.guard("open the share"):
                if not self.smb.path.isdir(self._unc(""), **self.kwargs):
                    raise ProviderError(f"driver {NAME}: share {self.share!r} not found on {self.where}")
        except BaseException:
            self.close()
            raise

    def _unc(self, path: str) -> str:
        return "\\\\" + "\\".join([self.host, self.share, *(p for p in path.split("/") if p)])

    def error(self, what: str, path: str, exc: Exception) -> ProcxError:
        from smbprotocol.exceptions import LogonFailure

        if isinstance(exc, LogonFailure):
            return ProviderError(f"driver {NAME}: login refused at {self.where} for user {self.user!r} "
                                 "(wrong user name or password)")
        if isinstance(exc, ValueError) and "Failed to connect" in str(exc):
            reason = exc.__cause__ or exc
            return ProviderError(f"driver {NAME}: cannot connect to {self.where}: "
                                 f"{one_line(getattr(reason, 'strerror', None) or reason)}")
        return super().error(f"{what} on share {self.share!r}" if path else what, path, exc)

    def entries(self, path: str) -> Iterator[tuple[str, bool]]:
        with self.guard("list", path):
            found = [(e.name, e.is_dir()) for e in self.smb.scandir(self._unc(path), **self.kwargs)
                     if e.is_dir() or e.is_file()]
        return iter(found)

    def is_file(self, path: str) -> bool:
        with self.guard("look at", path):
            return self.smb.path.isfile(self._unc(path), **self.kwargs)

    def read(self, path: str) -> bytes:
        with self.guard("read", path), self.smb.open_file(self._unc(path), "rb", **self.kwargs) as f:
            return f.read()

    def write(self, path: str, payload: bytes) -> None:
        with self.guard("write", path), self.smb.open_file(self._unc(path), "xb", **self.kwargs) as f:
            f.write(payload)

    def rename(self, source: str, target: str) -> None:
        with self.guard("rename", source):
            self.smb.replace(self._unc(source), self._unc(target), **self.kwargs)

    def remove(self, path: str) -> None:
        with self.guard("remove", path):
            self.smb.remove(self._unc(path), **self.kwargs)

    def makedirs(self, path: str) -> None:
        with self.guard("create the folder", path):
            self.smb.makedirs(self._unc(path), exist_ok=True, **self.kwargs)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.smb.reset_connection_cache(connection_cache=self.cache)


class _Share:
    prefix = NAME
    folders = False

    def connect(self) -> Tree:
        return ShareTree(self.config)  # type: ignore[attr-defined]

    def name(self, text: str) -> str:
        return text.replace("\\", "/")  # Windows separators welcome


class SmbSource(_Share, FileSource):
    def selector(self) -> Selector:
        return glob_selector(self.name(self.config["smb-key"]), self.config["smb-key-glob"])

    def template_key(self, key: str) -> str:
        return posixpath.basename(key)


class SmbSink(_Share, FileSink):
    pass

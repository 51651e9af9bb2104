"""nfs: files in a folder of an NFS export are the work (procx); pushx writes a file there.

A userspace NFS client (nfs-rs, AUTH_SYS, uid/gid 1001 by default as the original): no kernel mount. As root it
uses a reserved source port (below 1024, which many servers demand), otherwise an unprivileged one. The original
spoke NFSv3 only (portmapper + MOUNT); this driver tries NFSv4.1 first (one TCP port, no portmapper, the target
is the path in the server's NFSv4 namespace) and falls back to NFSv3 unless -nfs-version says which.
Fixes over the original (procx.md §4.25, §3.5, §7.3 #21-22, §7.7 #51; pushx.md §4.18, §6 #13), the selection
and ops being drivers/files.py's:
- a match inside a sub-folder is that file (`sub/job1`), not the sub-folder's name;
- rm removes folder/key (the original removed key at the export root, ignoring the folder);
- the first match in lexical order over every nested name; nothing found or a missing key is no work;
- mv is a rename within the export (the original copied then removed); destination folders are created;
  files an mv produces are not taken as work again; the selected key and mv target do not stick across items;
- pushx writes atomically through a temporary name, so an existing longer file never keeps a stale tail;
  all missing parent folders are created (0755), the file gets 0666 less the umask (the original: 0644);
- a failed mount is one line naming the server and export, exit 69 (the original died from inside Init).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from urllib.parse import quote

from core.errors import ProviderError, one_line
from core.options import BOTH, Delivery, DriverSpec, Option
from drivers.common import move_ops, selector_options
from drivers.files import FileSink, FileSource, Tree, check_files, clean, join

NAME = "nfs"
CONNECT_TIMEOUT, OPERATION_TIMEOUT = 10.0, 60.0
ORIGINAL_ID = 1001  # the AUTH_SYS uid/gid the original always sent


def _validate(config) -> None:
    for name in ("nfs-port", "nfs-mount-port"):
        if not 0 <= config[name] < 65536:
            raise ValueError(f"-{name}: {config[name]} is not a TCP port (0 for the default)")
    for name in ("nfs-uid", "nfs-gid"):
        if config[name] < 0:
            raise ValueError(f"-{name}: must not be negative")
    if config["nfs-mount-port"] and config["nfs-version"] not in ("", "3"):
        raise ValueError("-nfs-mount-port is for NFSv3 only (-nfs-version 3)")
    check_files(config, NAME)


SPEC = DriverSpec(
    "nfs",
    "files on an NFS export: each file is one unit of work",
    [
        Option("nfs-host", help="NFS server host name", required=True),
        Option("nfs-target", placeholder="PATH", required=True,
               help="exported path to mount, e.g. /export (NFSv4: its path in the server's NFSv4 namespace)"),
        Option("nfs-folder", help="folder inside the export holding the work files (empty: the export's root)",
               placeholder="PATH"),
        *selector_options("nfs", key_sides=BOTH),
        *move_ops("nfs", "folder"),
        Option("nfs-version", choices=("3", "4.0", "4.1"), extension=True,
               help="NFS version (empty: NFSv4.1, falling back to NFSv3)"),
        Option("nfs-port", "int", 0, extension=True,
               help="NFS server port (0: 2049 for NFSv4, the portmapper's answer for NFSv3)"),
        Option("nfs-mount-port", "int", 0, extension=True,
               help="NFSv3 MOUNT service port (0: ask the portmapper)"),
        Option("nfs-uid", "int", ORIGINAL_ID, extension=True, group="auth",
               help="AUTH_SYS user id sent to the server (the original always sent 1001)"),
        Option("nfs-gid", "int", ORIGINAL_ID, extension=True, group="auth",
               help="AUTH_SYS group id sent to the server (the original always sent 1001)"),
    ],
    source="drivers.nfs:NfsSource",
    sink="drivers.nfs:NfsSink",
    validate=_validate,
    extra="nfs",
    requires=("nfs_rs",),
    blocking=False,
    delivery=Delivery(
        "at-least-once",
        hold="none: NFS files carry no lease; the file stays in place until cleared (a dead procx leaves it "
             "there). Two procx on one export may take the same file and both run it; the later clear finds it "
             "gone and lets it be",
        fail="-nfs-fail-op: mv, rm, or left in place (offered again)",
        pushx="atomic: written to a temporary name, then renamed over the target",
        tested="real server: nfs-ganesha 4.3 (FSAL VFS), NFSv4.1 and NFSv3, through nfs-rs 0.8.7 (as root)",
    ),
)


class ExportTree(Tree):
    """One NFS export. NFSv4 mounts the server's root and prefixes every path with the export path (nfs-rs
    cannot list the root of a mount); NFSv3 mounts the export through MOUNT."""

    def __init__(self, config) -> None:
        import nfs_rs

        self.nfs = nfs_rs
        host, target = config["nfs-host"], "/" + clean(config["nfs-target"])
        self.driver, self.where = NAME, f"{host}:{target}"
        in_url = f"[{host}]" if ":" in host else host
        errors = []
        for version in [config["nfs-version"]] if config["nfs-version"] else ["4.1", "3"]:
            v3 = version == "3"
            try:
                self.client = nfs_rs.Client.connect(
                    f"nfs://{in_url}/" + (quote(target.lstrip("/")) if v3 else ""), versions=[version],
                    uid=config["nfs-uid"], gid=config["nfs-gid"], nfs_port=config["nfs-port"] or None,
                    mount_port=(config["nfs-mount-port"] or None) if v3 else None,
                    noresvport=os.geteuid() != 0, connect_timeout=CONNECT_TIMEOUT,
                    operation_timeout=OPERATION_TIMEOUT)
            except (nfs_rs.NfsError, OSError) as exc:
                errors.append(f"NFSv{version}: {one_line(exc)}")
                continue
            self.base = "" if v3 else clean(target)
            try:
                if self.base and self.client.stat(self.base).type != nfs_rs.FileType.DIRECTORY:
                    raise NotADirectoryError("not a directory")
            except (nfs_rs.NfsError, OSError) as exc:
                self.close()
                errors.append(f"NFSv{version}: {target}: {one_line(exc)}")
                continue
            return
        raise ProviderError(f"driver {NAME}: cannot mount {self.where}: " + "; ".join(errors))

    def _path(self, path: str) -> str:
        return join(self.base, path)

    def entries(self, path: str) -> Iterator[tuple[str, bool]]:
        kinds = {self.nfs.FileType.DIRECTORY: True, self.nfs.FileType.FILE: False}
        with self.guard("list", path):
            found = [(e.name, kinds[e.info.type]) for e in self.client.scandir(self._path(path))
                     if e.info.type in kinds]
        return iter(found)

    def _type(self, path: str) -> object:
        try:
            with self.guard("look at", path):
                return self.client.stat(self._path(path)).type
        except FileNotFoundError:
            return None

    def is_file(self, path: str) -> bool:
        return self._type(path) == self.nfs.FileType.FILE

    def is_dir(self, path: str) -> bool:
        return self._type(path) == self.nfs.FileType.DIRECTORY

    def read(self, path: str) -> bytes:
        with self.guard("read", path), self.client.open(self._path(path), "rb") as f:
            return f.read()

    def write(self, path: str, payload: bytes) -> None:
        with self.guard("write", path):
            with self.client.open(self._path(path), "wb") as f:
                f.write(payload)
            self.client.chmod(self._path(path), 0o666 & ~_umask())

    def rename(self, source: str, target: str) -> None:
        with self.guard("rename", source):
            self.client.rename(self._path(source), self._path(target))

    def remove(self, path: str) -> None:
        with self.guard("remove", path):
            self.client.remove(self._path(path))

    def makedirs(self, path: str) -> None:
        """One level at a time below the export (mkdir's parents=True trips over NFSv4's read-only pseudo root)."""
        if self.is_dir(path):
            return
        if posixpath.dirname(path):
            self.makedirs(posixpath.dirname(path))
        with self.guard("create the folder", path):
            self.client.mkdir(self._path(path), 0o755, exist_ok=True)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Export:
    prefix = NAME

    def connect(self) -> Tree:
        return ExportTree(self.config)  # type: ignore[attr-defined]


class NfsSource(_Export, FileSource):
    pass


class NfsSink(_Export, FileSink):
    pass

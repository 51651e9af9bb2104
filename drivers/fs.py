"""fs: files in a local folder are the work (procx); pushx writes a file.

Fixes over the original (procx.md §4.13, §7.3 #21-22, §7.7 #50; pushx.md §4.9), all in drivers/files.py: names
are relative paths without a leading slash, the first match in lexical order wins, a missing key is "no work",
mv creates the destination folder and works across filesystems, files an mv puts inside the source folder are
never picked up again, the selected key does not stick across items, and pushx writes atomically.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

from core.options import BOTH, Delivery, DriverSpec, Option
from drivers.common import move_ops, selector_options
from drivers.files import FileSink, FileSource, Tree, check_files, clean


def _validate(config) -> None:
    check_files(config, "fs", norm=os.path.realpath)


SPEC = DriverSpec(
    "fs",
    "files in a local folder: each file is one unit of work",
    [
        Option("fs-folder", help="the folder holding the work files", required=True, placeholder="PATH"),
        *selector_options("fs", key_sides=BOTH),
        *move_ops("fs", "folder"),
    ],
    source="drivers.fs:FsSource",
    sink="drivers.fs:FsSink",
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="none: the file stays in place until cleared; two procx on one folder may take the same file",
        fail="-fs-fail-op: mv, rm, or left in place (offered again)",
        pushx="atomic: written to a temporary name, then renamed",
        tested="real: local filesystem",
    ),
)


class LocalTree(Tree):
    """The local file system; tree paths are absolute paths without their leading `/`."""

    def entries(self, path: str) -> Iterator[tuple[str, bool]]:
        with os.scandir("/" + path) as found:
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    yield entry.name, True
                elif entry.is_file():
                    yield entry.name, False

    def is_file(self, path: str) -> bool:
        return os.path.isfile("/" + path)

    def read(self, path: str) -> bytes:
        with open("/" + path, "rb") as f:
            return f.read()

    def write(self, path: str, payload: bytes) -> None:
        with open("/" + path, "xb") as f:  # mode 0666 less the umask, as the original
            f.write(payload)

    def rename(self, source: str, target: str) -> None:
        shutil.move("/" + source, "/" + target)  # os.rename, or copy + delete across filesystems

    def remove(self, path: str) -> None:
        os.unlink("/" + path)

    def makedirs(self, path: str) -> None:
        os.makedirs("/" + path, exist_ok=True)

    def norm(self, path: str) -> str:
        return clean(os.path.realpath("/" + path))


class _Local:
    prefix = "fs"

    def connect(self) -> Tree:
        return LocalTree()

    def place(self, folder: str) -> str:
        return clean(os.path.abspath(folder))


class FsSource(_Local, FileSource):
    pass


class FsSink(_Local, FileSink):
    pass

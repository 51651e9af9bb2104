"""fs: files in a local folder are the work (procx); pushx writes a file.

Fixes over the original: names are relative paths without a leading slash, the first match in lexical order
wins, a missing key is "no work", mv creates the destination folder and works across filesystems, the mv
destination inside the source folder is never picked up again, and pushx writes atomically.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

from core.options import BOTH, PROCX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import check_selection, move_ops, selector_options


def _validate(config) -> None:
    side = config.side
    if side == PROCX:
        check_selection(config, "fs", "key", "folder")
    elif not config["fs-key"]:
        raise ValueError("-fs-key is required: the name of the file to write")


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


TEMP_PREFIX = ".procx-tmp-"


def _walk(root: str, rel: str = "") -> Iterator[str]:
    """Relative paths of the files below root, in lexical order, depth first."""
    try:
        entries = sorted(os.scandir(os.path.join(root, rel) if rel else root), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        name = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(root, name)
        elif entry.is_file() and not entry.name.startswith(TEMP_PREFIX):
            yield name


class FsSource(Source):
    def open(self) -> None:
        c = self.config
        self.folder = str(c["fs-folder"])
        self.regex = re.compile(c["fs-key-regex"]) if c["fs-key-regex"] else None
        folder = os.path.realpath(self.folder)
        self.skip = tuple(
            os.path.relpath(os.path.realpath(c[f"fs-{p}-folder"]), folder) + "/"
            for p in ("clear", "fail")
            if c[f"fs-{p}-op"] == "mv" and os.path.realpath(c[f"fs-{p}-folder"]).startswith(folder + os.sep))

    def _select(self) -> str | None:
        key = self.config["fs-key"]
        if key:
            return key if os.path.isfile(os.path.join(self.folder, key)) else None
        prefix = self.config["fs-key-prefix"]
        for name in _walk(self.folder):
            if name.startswith(self.skip):
                continue
            if (prefix and name.startswith(prefix)) or (self.regex and self.regex.search(name)):
                return name
        return None

    def depth(self) -> int:
        """Files waiting (matching the selector)."""
        if self.config["fs-key"]:
            return int(self._select() is not None)
        prefix = self.config["fs-key-prefix"]
        return sum(1 for name in _walk(self.folder) if not name.startswith(self.skip)
                   and ((prefix and name.startswith(prefix)) or (self.regex and self.regex.search(name))))

    def get(self, wait: float) -> Work | None:
        key = self._select()
        if key is None:
            return None
        try:
            with open(os.path.join(self.folder, key), "rb") as f:
                payload = f.read()
        except FileNotFoundError:  # taken by another procx in between
            return None
        return Work(payload, key, handle=key)

    def clear(self, work: Work) -> None:
        self._apply("clear", work.handle)

    def fail(self, work: Work) -> None:
        self._apply("fail", work.handle)

    def _apply(self, phase: str, key: str) -> None:
        c = self.config
        op = c[f"fs-{phase}-op"]
        path = os.path.join(self.folder, key)
        if op == "rm":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        elif op == "mv":
            template = c[f"fs-{phase}-key-template"]
            dest = template.replace("{{key}}", key) if template else (c[f"fs-{phase}-key"] or key)
            target = os.path.join(c[f"fs-{phase}-folder"], dest)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            shutil.move(path, target)


class FsSink(Sink):
    def push(self, payload: bytes) -> str | None:
        key = self.config["fs-key"]
        target = os.path.join(self.config["fs-folder"], key)
        directory = os.path.dirname(target) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return key


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

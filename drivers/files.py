"""What the file drivers (fs, smb, nfs) share: selecting a file, clearing/failing it, writing one atomically.

A driver supplies a `Tree` (its file system: local, an SMB share, an NFS export) and, in its Source/Sink
subclass, the option prefix and how it connects. Everything else is here, once:

- selection: an exact key, or the first name in lexical order (depth first, names sorted per directory) over
  every nested file below the folder that the selector matches; a missing key or nothing matching is no work;
  a file that vanishes between listing and reading (taken by another procx) is skipped;
- keys are paths relative to the folder, `/`-separated, never with a leading `/`;
- clear/fail: rm, mv (to the destination folder + key / key template, parents created, the target replaced)
  or nothing; names an mv produces inside the source folder are never taken as work again; a file already
  gone when it is cleared or failed (another procx dealt with it) is not an error;
- pushx: the payload goes to a temporary name in the target's directory, then is renamed over the target, so
  readers (and procx) never see a half-written file; temporary names are never taken as work.
Files carry no lease: see the drivers' Delivery declarations.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from core.errors import ProcxError, ProviderError, one_line
from core.options import PROCX
from core.settings import Config
from core.work import Sink, Source, Work
from drivers.common import check_selection

TEMP_PREFIX = ".procx-tmp-"
PHASES = ("clear", "fail")


def join(*parts: str) -> str:
    """`/`-join the non-empty parts."""
    return posixpath.join(*[p for p in parts if p]) if any(parts) else ""


def clean(path: str) -> str:
    """A tree path: `/`-separated, normalised, without a leading `/` or `./` ("" is the root)."""
    path = posixpath.normpath(path).lstrip("/")
    return "" if path == "." else path


class Tree:
    """A file system reached by a driver. Paths are `/`-separated and relative to the tree's root.

    Missing files and directories raise FileNotFoundError; any other failure raises ProviderError (one line,
    naming the server, never a secret): remote trees run their library calls inside `guard()`."""

    driver = ""
    where = ""  # the server, for messages

    @contextlib.contextmanager
    def guard(self, what: str, path: str = "") -> Iterator[None]:
        """A library call: a missing path raises FileNotFoundError, any other failure a ProviderError."""
        try:
            yield
        except (FileNotFoundError, NotADirectoryError, ProcxError):
            raise
        except Exception as exc:
            if getattr(exc, "errno", None) == errno.ENOENT:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path) from None
            raise self.error(what, path, exc) from None

    def error(self, what: str, path: str, exc: Exception) -> ProcxError:
        return ProviderError(f"driver {self.driver}: {self.where}: cannot {what}{f' {path!r}' if path else ''}: "
                             f"{one_line(exc)}")

    def entries(self, path: str) -> Iterable[tuple[str, bool]]:
        """(name, is_directory) of the files and directories in the directory `path`."""
        raise NotImplementedError

    def is_file(self, path: str) -> bool:
        raise NotImplementedError

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def write(self, path: str, payload: bytes) -> None:
        """Create `path` (a new, unused name) holding `payload`."""
        raise NotImplementedError

    def rename(self, source: str, target: str) -> None:
        """Rename, replacing an existing target (its directory exists)."""
        raise NotImplementedError

    def remove(self, path: str) -> None:
        raise NotImplementedError

    def makedirs(self, path: str) -> None:
        """Create the directory and its parents; an existing one is fine."""
        raise NotImplementedError

    def norm(self, path: str) -> str:
        """The canonical form of a path, to compare folders."""
        return clean(path)

    def close(self) -> None:
        """Release the connection; must not raise."""


def write_atomic(tree: Tree, path: str, payload: bytes) -> None:
    """Write `path` through a temporary name in its directory, renamed over it once complete."""
    directory = posixpath.dirname(path)
    if directory:
        tree.makedirs(directory)
    temp = join(directory, TEMP_PREFIX + os.urandom(16).hex())
    try:
        tree.write(temp, payload)
        tree.rename(temp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            tree.remove(temp)
        raise


# ---------------------------------------------------------------------------------------------- selection
class Selector(NamedTuple):
    """Which files are work: an exact `key`, or the names `match` accepts (`enter` prunes directories that
    cannot hold a match)."""

    key: str = ""
    match: Callable[[str], bool] = lambda name: False
    enter: Callable[[str], bool] = lambda directory: True


def key_selector(config, prefix: str) -> Selector:
    """fs/nfs: -X-key, else -X-key-prefix (plain starts-with), else -X-key-regex (unanchored search)."""
    if config[f"{prefix}-key"]:
        return Selector(key=clean(config[f"{prefix}-key"]))
    start = config[f"{prefix}-key-prefix"]
    if start:
        return Selector(match=lambda name: name.startswith(start),
                        enter=lambda d: (d + "/").startswith(start) or start.startswith(d + "/"))
    return Selector(match=re.compile(config[f"{prefix}-key-regex"]).search)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's path.Match syntax as a regular expression over a whole `/`-separated name: `*` and `?` never match
    `/`, `[...]` (negated with `^`) with ranges, `\\` escapes. ValueError for a malformed pattern."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 == n:
                raise ValueError("a trailing \\ escapes nothing")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i += 1
            negate = i < n and pattern[i] == "^"
            i += negate
            items = []
            while i < n and (pattern[i] != "]" or not items):
                lo = pattern[i + 1] if pattern[i] == "\\" and i + 1 < n else pattern[i]
                i += 2 if pattern[i] == "\\" else 1
                if i + 1 < n and pattern[i] == "-" and pattern[i + 1] != "]":
                    hi = pattern[i + 2] if pattern[i + 1] == "\\" and i + 2 < n else pattern[i + 1]
                    i += 3 if pattern[i + 1] == "\\" else 2
                    if hi < lo:
                        raise ValueError(f"bad range {lo}-{hi}")
                    items.append(f"{re.escape(lo)}-{re.escape(hi)}")
                else:
                    items.append(re.escape(lo))
            if i >= n:
                raise ValueError("unterminated [")
            out.append(f"[^/{''.join(items)}]" if negate else f"[{''.join(items)}]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def glob_selector(key: str, pattern: str) -> Selector:
    """smb: the exact key, else the glob (a name with as many `/`-separated parts as the pattern)."""
    if key:
        return Selector(key=clean(key))
    regex, depth = glob_regex(pattern), pattern.count("/")
    return Selector(match=lambda name: regex.fullmatch(name) is not None,
                    enter=lambda d: d.count("/") < depth)


def walk(tree: Tree, folder: str, enter: Callable[[str], bool], rel: str = "") -> Iterator[str]:
    """Names of the files below `folder` (relative to it), in lexical order, depth first; temporary names of
    unfinished writes are left out. A missing folder holds nothing."""
    try:
        entries = sorted(tree.entries(join(folder, rel)))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name, is_dir in entries:
        path = join(rel, name)
        if is_dir:
            if enter(path):
                yield from walk(tree, folder, enter, path)
        elif not name.startswith(TEMP_PREFIX):
            yield path


# ---------------------------------------------------------------------------------------------- clear / fail
class Move(NamedTuple):
    """One phase's operation: "" (leave the file), rm, or mv to `folder` + (`template` with {{key}} | `key` |
    the file's own key)."""

    op: str
    folder: str = ""
    key: str = ""
    template: str = ""

    def target(self, key: str, template_key: str) -> str:
        name = self.template.replace("{{key}}", template_key) if self.template else (self.key or key)
        return clean(join(self.folder, name))

    def produces(self, tree: Tree) -> re.Pattern[str]:
        """The normalised paths this mv can produce (so that they are not taken as work again)."""
        path = tree.norm(join(self.folder, self.template or self.key or "{{key}}"))
        return re.compile(".+".join(re.escape(part) for part in path.split("{{key}}")))


def check_files(config, prefix: str, *, folders: bool = True, norm: Callable[[str], str] = clean) -> None:
    """procx's rules of a file driver (ValueError naming the flag): check_selection's for fs/nfs, and an mv
    that would rename a file onto itself (destination folder = source folder, no key, no template)."""
    if config.side != PROCX:
        if not config[f"{prefix}-key"]:
            raise ValueError(f"-{prefix}-key is required: the name of the file to write")
        return
    if folders:
        check_selection(config, prefix, "key", "folder")
    source = norm(config[f"{prefix}-folder"]) if folders else ""
    for phase in PHASES:
        if config[f"{prefix}-{phase}-op"] != "mv":
            continue
        if config[f"{prefix}-{phase}-key"] or config[f"{prefix}-{phase}-key-template"]:
            continue
        if not folders or norm(config[f"{prefix}-{phase}-folder"]) == source:
            raise ValueError(f"-{prefix}-{phase}-op mv would rename the file onto itself: give "
                             f"-{prefix}-{phase}-key or -{prefix}-{phase}-key-template"
                             + (f" or another -{prefix}-{phase}-folder" if folders else ""))


# ---------------------------------------------------------------------------------------------- procx / pushx
class _FileEnd:
    """What both sides of a file driver know: the option prefix, whether it has folders, how it connects."""

    prefix = ""
    folders = True  # the driver has -X-folder / -X-{clear,fail}-folder (smb works from the share root)
    config: Config

    def connect(self) -> Tree:
        raise NotImplementedError

    def place(self, folder: str) -> str:
        """A configured folder as a tree path."""
        return clean(folder)

    def name(self, text: str) -> str:
        """A configured key or key template with `/` separators."""
        return text

    def folder(self, phase: str = "") -> str:
        """The tree path of -X-folder (or of -X-<phase>-folder); the root for a driver without folders."""
        if not self.folders:
            return ""
        return self.place(self.config[f"{self.prefix}-{phase}-folder" if phase else f"{self.prefix}-folder"])

    def close(self) -> None:
        tree = getattr(self, "tree", None)
        if tree is not None:
            tree.close()


class FileSource(_FileEnd, Source):
    """procx side of a file driver. Subclasses set `prefix` and `folders` and implement `connect()`."""

    def selector(self) -> Selector:
        return key_selector(self.config, self.prefix)

    def template_key(self, key: str) -> str:
        """What {{key}} stands for in a key template."""
        return key

    def open(self) -> None:
        c, p = self.config, self.prefix
        self.tree = self.connect()
        self.source = self.folder()
        self.select = self.selector()
        self.moves = {phase: Move(c[f"{p}-{phase}-op"], self.folder(phase), self.name(c[f"{p}-{phase}-key"]),
                                  self.name(c[f"{p}-{phase}-key-template"])) for phase in PHASES}
        self.skip = [m.produces(self.tree) for m in self.moves.values() if m.op == "mv"]
        self.base = self.tree.norm(self.source)

    def candidates(self) -> Iterator[str]:
        """The keys that are work, in the order they are taken."""
        if self.select.key:
            if self.tree.is_file(join(self.source, self.select.key)):
                yield self.select.key
            return
        for name in walk(self.tree, self.source, self.select.enter):
            if self.select.match(name) and not any(p.fullmatch(join(self.base, name)) for p in self.skip):
                yield name

    def get(self, wait: float) -> Work | None:
        for key in self.candidates():
            try:
                payload = self.tree.read(join(self.source, key))
            except FileNotFoundError:  # taken by another procx in between
                continue
            return Work(payload, key, handle=key)
        return None

    def depth(self) -> int:
        """Files waiting (matching the selector)."""
        return sum(1 for _ in self.candidates())

    def clear(self, work: Work) -> None:
        self._finish("clear", work.handle)

    def fail(self, work: Work) -> None:
        self._finish("fail", work.handle)

    def _finish(self, phase: str, key: str) -> None:
        move = self.moves[phase]
        source = join(self.source, key)
        with contextlib.suppress(FileNotFoundError):  # already gone: another procx cleared or failed it
            if move.op == "rm":
                self.tree.remove(source)
            elif move.op == "mv":
                target = move.target(key, self.template_key(key))
                if posixpath.dirname(target):
                    self.tree.makedirs(posixpath.dirname(target))
                self.tree.rename(source, target)


class FileSink(_FileEnd, Sink):
    """pushx side of a file driver: writes -X-folder/-X-key atomically."""

    def open(self) -> None:
        self.tree = self.connect()

    def push(self, payload: bytes) -> str | None:
        key = clean(self.name(self.config[f"{self.prefix}-key"]))
        write_atomic(self.tree, join(self.folder(), key), payload)
        return key

"""fs: the conformance suite over a folder, and the original's selection and mv/rm rules (with its fixes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core import api
from tests.conformance import Backend, Conformance
from tests.support import run


class FsBackend(Backend):
    driver = "fs"
    redelivery_wait = 1.0

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def common_args(self) -> list[str]:
        return ["-driver", "fs", "-fs-folder", str(self.folder)]

    def push_args(self, n: int) -> list[str]:
        return ["-fs-key", f"job-{n:04d}"]

    def procx_args(self) -> list[str]:
        return ["-fs-key-prefix", "job-", "-fs-clear-op", "rm"]

    def pending(self) -> int:
        return sum(1 for p in self.folder.rglob("*") if p.is_file())


class TestFsConformance(Conformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> FsBackend:
        folder = tmp_path / "work"
        folder.mkdir()
        return FsBackend(folder)


def fs(folder: Path, *extra: str) -> list[str]:
    return ["-driver", "fs", "-fs-folder", str(folder), *extra]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_names_are_relative_and_the_first_in_lexical_order_wins(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "job1").write_bytes(b"deep")
    (tmp_path / "a" / "job2").write_bytes(b"shallow")
    (tmp_path / "z-job").write_bytes(b"last")
    assert api.procx(fs(tmp_path, "-fs-key-regex", "job", "-fs-clear-op", "rm")) == b"deep"
    assert api.procx(fs(tmp_path / "a", "-fs-key-prefix", "job")) == b"shallow"  # no leading slash in names


def test_mv_with_key_template_creates_the_destination(tmp_path: Path) -> None:
    src, done = tmp_path / "in", tmp_path / "done"
    src.mkdir()
    (src / "sub").mkdir()
    (src / "sub" / "j.json").write_bytes(b"{}")
    args = fs(src, "-fs-key-prefix", "sub/", "-fs-clear-op", "mv", "-fs-clear-folder", str(done),
              "-fs-clear-key-template", "ok-{{key}}")
    assert run("procx", *args, "true").returncode == 0
    assert tree(done) == {"ok-sub/j.json": b"{}"}
    assert tree(src) == {}


def test_fail_mv_to_a_folder_inside_the_source_is_not_taken_again(tmp_path: Path) -> None:
    (tmp_path / "j1").write_bytes(b"one")
    args = fs(tmp_path, "-fs-key-regex", ".", "-fs-fail-op", "mv", "-fs-fail-folder", str(tmp_path / "failed"))
    assert run("procx", *args, "false").returncode == 1
    assert tree(tmp_path) == {"failed/j1": b"one"}
    assert run("procx", *args).stdout == b""  # the failed/ folder is not a source of work


def test_fail_rm_removes(tmp_path: Path) -> None:
    (tmp_path / "j1").write_bytes(b"x")
    assert run("procx", *fs(tmp_path, "-fs-key", "j1", "-fs-fail-op", "rm"), "false").returncode == 1
    assert tree(tmp_path) == {}


def test_missing_exact_key_is_no_work(tmp_path: Path) -> None:
    done = run("procx", *fs(tmp_path, "-fs-key", "absent"), "touch", str(tmp_path / "ran"))
    assert (done.returncode, done.stdout) == (0, b"")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(("extra", "message"), [
    ((), b"-fs-key, -fs-key-prefix or -fs-key-regex"),
    (("-fs-key-regex", "("), b"-fs-key-regex: invalid regular expression"),
    (("-fs-key", "k", "-fs-clear-op", "mv"), b"-fs-clear-folder is required"),
    (("-fs-key", "k", "-fs-clear-op", "copy"), b"-fs-clear-op (PROCX_FS_CLEAR_OP)"),
])
def test_bad_settings_are_usage_errors(tmp_path: Path, extra: tuple[str, ...], message: bytes) -> None:
    done = run("procx", *fs(tmp_path, *extra))
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_pushx_writes_atomically_and_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er"
    assert run("pushx", *fs(target, "-fs-key", "f.bin"), input=b"\x00\x01").returncode == 0
    assert tree(tmp_path) == {"deep/er/f.bin": b"\x00\x01"}
    assert not any(p.name.startswith(".procx-tmp-") for p in tmp_path.rglob("*"))


def test_pushx_needs_a_key(tmp_path: Path) -> None:
    done = run("pushx", *fs(tmp_path), input=b"x")
    assert done.returncode == 2
    assert b"-fs-key is required" in done.stderr


def test_pushx_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        api.pushx(b"x", fs(tmp_path, "-fs-key", "f"))
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640

"""nfs against a real nfs-ganesha (userspace client): the conformance suite over NFSv4.1, selection, mv/rm (with
the original's folder bugs fixed), atomic pushx, NFSv4.0 and NFSv3 (and the fallback to it), bad input,
unreachable server or export (exit 69, one line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import api
from tests.conformance import Conformance
from tests.drivers.file_cases import FolderBackend, fresh_folder
from tests.drivers.file_servers import Ganesha, ganesha, ganesha_v3, put, tree  # noqa: F401 - fixtures
from tests.support import run


class NfsBackend(FolderBackend):
    driver = "nfs"
    server: Ganesha

    def common_args(self) -> list[str]:
        return [*self.server.args("4.1"), "-nfs-folder", self.folder]

    def push_args(self, n: int) -> list[str]:
        return ["-nfs-key", f"job-{n:04d}"]

    def procx_args(self) -> list[str]:
        return ["-nfs-key-prefix", "job-", "-nfs-clear-op", "rm"]


@pytest.fixture
def folder(ganesha: Ganesha) -> str:  # noqa: F811 - the fixture imported above
    """A fresh folder of the export for one test."""
    return fresh_folder(ganesha)


class TestNfsConformance(Conformance):
    @pytest.fixture
    def backend(self, ganesha: Ganesha, folder: str) -> NfsBackend:  # noqa: F811
        return NfsBackend(ganesha, folder)


def test_nested_match_is_the_file_and_the_first_in_lexical_order_wins(ganesha: Ganesha,  # noqa: F811
                                                                      folder: str) -> None:
    put(ganesha.export_dir / folder, {"a/b/job1": b"deep", "a/job2": b"shallow", "z-job": b"last"})
    take = [*ganesha.args("4.1"), "-nfs-folder", folder, "-nfs-clear-op", "rm"]
    assert api.procx([*take, "-nfs-key-regex", "job"]) == b"deep"  # the original returned the folder "a"
    assert api.procx([*take, "-nfs-key-prefix", "a/"]) == b"shallow"
    assert api.procx([*take, "-nfs-key-prefix", "a/"]) is None
    assert tree(ganesha.export_dir / folder) == {"z-job": b"last"}


def test_rm_removes_the_file_in_the_folder_not_at_the_export_root(ganesha: Ganesha, folder: str) -> None:  # noqa: F811
    put(ganesha.export_dir, {f"{folder}/in/same": b"work", "same": b"a bystander at the export root"})
    assert api.procx([*ganesha.args("4.1"), "-nfs-folder", f"{folder}/in", "-nfs-key", "same", "-nfs-clear-op", "rm"]) \
        == b"work"
    assert tree(ganesha.export_dir / folder) == {}
    assert (ganesha.export_dir / "same").read_bytes() == b"a bystander at the export root"
    (ganesha.export_dir / "same").unlink()


def test_missing_key_and_nothing_matching_are_no_work(ganesha: Ganesha, folder: str, tmp_path: Path) -> None:  # noqa: F811
    for selector in (("-nfs-key", "absent"), ("-nfs-key-regex", "^nothing$")):
        done = run("procx", *ganesha.args("4.1"), "-nfs-folder", folder, *selector, "touch", str(tmp_path / "ran"))
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert not (tmp_path / "ran").exists()


def test_mv_creates_the_destination_and_moved_files_are_not_taken_again(ganesha: Ganesha,  # noqa: F811
                                                                        folder: str) -> None:
    put(ganesha.export_dir / folder, {"j1": b"one", "sub/j2": b"two"})
    args = [*ganesha.args("4.1"), "-nfs-folder", folder, "-nfs-key-regex", "j", "-nfs-clear-op", "mv",
            "-nfs-clear-folder", f"{folder}/done/today", "-nfs-fail-op", "mv", "-nfs-fail-folder", folder,
            "-nfs-fail-key-template", "failed-{{key}}"]
    assert run("procx", *args, "true").returncode == 0
    assert run("procx", *args, "false").returncode == 1
    assert run("procx", *args).stdout == b""  # done/... and failed-... are mv results, not work
    assert tree(ganesha.export_dir / folder) == {"done/today/j1": b"one", "failed-sub/j2": b"two"}


def test_two_takers_of_one_file_both_clear_without_error(ganesha: Ganesha, folder: str) -> None:  # noqa: F811
    """Files carry no lease: two procx may take the same file; the second clear finds it gone."""
    put(ganesha.export_dir / folder, {"j": b"shared"})
    args = [*ganesha.args("4.1"), "-nfs-folder", folder, "-nfs-key", "j", "-nfs-clear-op", "mv",
            "-nfs-clear-folder", f"{folder}/done"]
    with api.work(args) as first, api.work(args) as second:
        assert first.payload == second.payload == b"shared"
    assert tree(ganesha.export_dir / folder) == {"done/j": b"shared"}


def test_pushx_replaces_a_longer_file_whole_and_creates_folders(ganesha: Ganesha, folder: str) -> None:  # noqa: F811
    put(ganesha.export_dir / folder, {"f": b"an old and much longer content"})
    for key, data in (("f", b"new"), ("x/y/z", b"\x00z")):
        done = run("pushx", *ganesha.args("4.1"), "-nfs-folder", folder, "-nfs-key", key, input=data)
        assert done.returncode == 0, done.stderr
    assert tree(ganesha.export_dir / folder) == {"f": b"new", "x/y/z": b"\x00z"}  # the original kept "...content"
    written = ganesha.export_dir / folder / "x" / "y" / "z"
    assert (written.stat().st_uid, written.stat().st_mode & 0o777) == (1001, 0o644)


@pytest.mark.parametrize(("tool", "extra", "message"), [
    ("procx", (), b"-nfs-key, -nfs-key-prefix or -nfs-key-regex"),
    ("procx", ("-nfs-key-regex", "("), b"-nfs-key-regex: invalid regular expression"),
    ("procx", ("-nfs-key", "k", "-nfs-clear-op", "mv"), b"-nfs-clear-folder is required"),
    ("procx", ("-nfs-key", "k", "-nfs-fail-op", "mv", "-nfs-fail-folder", "."), b"rename the file onto itself"),
    ("procx", ("-nfs-key", "k", "-nfs-port", "70000"), b"-nfs-port: 70000"),
    ("procx", ("-nfs-key", "k", "-nfs-version", "4.2"), b"-nfs-version (PROCX_NFS_VERSION)"),
    ("pushx", (), b"-nfs-key is required"),
])
def test_bad_settings_are_usage_errors(ganesha: Ganesha, tool: str, extra: tuple[str, ...],  # noqa: F811
                                       message: bytes) -> None:
    done = run(tool, *ganesha.args("4.1"), *extra)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_a_missing_host_is_a_usage_error() -> None:
    done = run("procx", "-driver", "nfs", "-nfs-target", "/export", "-nfs-key", "k")
    assert done.returncode == 2
    assert b"-nfs-host" in done.stderr


@pytest.mark.parametrize(("change", "message"), [
    (("-nfs-port", "1"), b"cannot mount 127.0.0.1:/export: NFSv4.1: Connection refused"),
    (("-nfs-target", "/nosuch"), b"cannot mount 127.0.0.1:/nosuch: NFSv4.1: /nosuch:"),
])
def test_unreachable_server_or_export_is_exit_69(ganesha: Ganesha, change: tuple[str, str],  # noqa: F811
                                                 message: bytes) -> None:
    done = run("procx", *ganesha.args("4.1"), *change, "-nfs-key", "k")
    assert done.returncode == 69, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize("version", ["4.0", ""])
def test_other_nfsv4_choices_round_trip(ganesha: Ganesha, folder: str, version: str) -> None:  # noqa: F811
    args = [*ganesha.args(version), "-nfs-folder", folder]
    api.pushx(b"v4", [*args, "-nfs-key", "j"])
    assert api.procx([*args, "-nfs-key", "j", "-nfs-clear-op", "rm"]) == b"v4"
    assert tree(ganesha.export_dir / folder) == {}


def test_nfsv3_round_trip_at_the_export_root(ganesha_v3: Ganesha) -> None:  # noqa: F811
    args = ganesha_v3.args("3")
    api.pushx(b"\x00v3", [*args, "-nfs-key", "v3-job"])
    assert api.procx([*args, "-nfs-key-prefix", "v3-", "-nfs-clear-op", "mv", "-nfs-clear-folder", "done"]) \
        == b"\x00v3"
    assert tree(ganesha_v3.export_dir) == {"done/v3-job": b"\x00v3"}


def test_without_a_version_nfsv3_is_the_fallback(ganesha_v3: Ganesha, tmp_path: Path) -> None:  # noqa: F811
    put(ganesha_v3.export_dir, {"in/auto": b"fallback"})
    done = run("procx", *ganesha_v3.args(), "-nfs-folder", "in", "-nfs-key", "auto", "-nfs-clear-op", "rm")
    assert (done.returncode, done.stdout) == (0, b"fallback"), done.stderr
    refused = run("procx", "-driver", "nfs", "-nfs-host", "127.0.0.1", "-nfs-target", "/export", "-nfs-port",
                  str(ganesha_v3.port), "-nfs-version", "4.1", "-nfs-key", "auto")
    assert refused.returncode == 69
    assert b"cannot mount 127.0.0.1:" in refused.stderr and b"NFSv4.1:" in refused.stderr

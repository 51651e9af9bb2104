"""smb against a real Samba smbd: the conformance suite, glob selection, mv/rm, atomic pushx, bad input, login
failures (exit 69, one line, never the password)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import api
from tests.conformance import Conformance
from tests.drivers.file_cases import FolderBackend, fresh_folder
from tests.drivers.file_servers import SMB_PASSWORD, Samba, put, samba, tree  # noqa: F401 - samba is a fixture
from tests.support import clean_env, run


class SmbBackend(FolderBackend):
    driver = "smb"
    server: Samba

    def common_args(self) -> list[str]:
        return self.server.args()

    def push_args(self, n: int) -> list[str]:
        return ["-smb-key", f"{self.folder}/job-{n:04d}"]

    def procx_args(self) -> list[str]:
        return ["-smb-key-glob", f"{self.folder}/job-*", "-smb-clear-op", "rm"]


@pytest.fixture
def folder(samba: Samba) -> str:  # noqa: F811 - the fixture imported above
    """A fresh folder of the share for one test."""
    return fresh_folder(samba)


class TestSmbConformance(Conformance):
    @pytest.fixture
    def backend(self, samba: Samba, folder: str) -> SmbBackend:  # noqa: F811
        return SmbBackend(samba, folder)


def test_glob_takes_the_first_match_in_lexical_order_and_star_stays_in_one_folder(samba: Samba,  # noqa: F811
                                                                                   folder: str) -> None:
    put(samba.share_dir, {f"{folder}/b/job1": b"deep", f"{folder}/a.txt": b"top-a", f"{folder}/c.txt": b"top-c",
                f"{folder}/b/x.txt": b"nested"})
    take = [*samba.args(), "-smb-clear-op", "rm"]
    assert api.procx([*take, "-smb-key-glob", f"{folder}/*.txt"]) == b"top-a"
    assert api.procx([*take, "-smb-key-glob", f"{folder}/*.txt"]) == b"top-c"
    assert api.procx([*take, "-smb-key-glob", f"{folder}/*.txt"]) is None  # b/x.txt is one folder deeper
    assert api.procx([*take, "-smb-key-glob", f"{folder}/*/[a-x]*"]) == b"deep"
    assert tree(samba.share_dir / folder) == {"b/x.txt": b"nested"}


def test_nothing_matching_and_a_missing_key_are_no_work(samba: Samba, folder: str, tmp_path: Path) -> None:  # noqa: F811
    for selector in (("-smb-key-glob", f"{folder}/*.none"), ("-smb-key", f"{folder}/absent")):
        done = run("procx", *samba.args(), *selector, "touch", str(tmp_path / "ran"))
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert not (tmp_path / "ran").exists()


def test_exact_key_with_windows_separators(samba: Samba, folder: str) -> None:  # noqa: F811
    put(samba.share_dir, {f"{folder}/in/j.bin": b"\x00\xff"})
    assert api.procx([*samba.args(), "-smb-key", f"{folder}\\in\\j.bin", "-smb-clear-op", "rm"]) == b"\x00\xff"
    assert tree(samba.share_dir / folder) == {}


def test_mv_template_key_is_the_base_name_and_moved_files_are_not_taken_again(samba: Samba,  # noqa: F811
                                                                               folder: str) -> None:
    put(samba.share_dir, {f"{folder}/in/j1": b"one", f"{folder}/in/j2": b"two", f"{folder}/done/j2": b"old and longer"})
    args = [*samba.args(), "-smb-key-glob", f"{folder}/*/j*", "-smb-clear-op", "mv",
            "-smb-clear-key-template", f"{folder}/done/{{{{key}}}}"]
    assert run("procx", *args, "true").returncode == 0
    assert run("procx", *args, "true").returncode == 0  # j2 replaces the older done/j2
    assert run("procx", *args).stdout == b""  # done/j1 and done/j2 match the glob but are mv results
    assert tree(samba.share_dir / folder) == {"done/j1": b"one", "done/j2": b"two"}


def test_fail_mv_to_a_fixed_key_and_fail_rm(samba: Samba, folder: str) -> None:  # noqa: F811
    put(samba.share_dir, {f"{folder}/a": b"A", f"{folder}/b": b"B"})
    mv = [*samba.args(), "-smb-key", f"{folder}/a", "-smb-fail-op", "mv", "-smb-fail-key", f"{folder}\\bad\\a"]
    assert run("procx", *mv, "false").returncode == 1
    rm = [*samba.args(), "-smb-key", f"{folder}/b", "-smb-fail-op", "rm"]
    assert run("procx", *rm, "false").returncode == 1
    assert tree(samba.share_dir / folder) == {"bad/a": b"A"}


def test_two_takers_of_one_file_both_clear_without_error(samba: Samba, folder: str) -> None:  # noqa: F811
    """Files carry no lease: two procx may take the same file; the second clear finds it gone."""
    put(samba.share_dir, {f"{folder}/j": b"shared"})
    args = [*samba.args(), "-smb-key-glob", f"{folder}/*", "-smb-clear-op", "rm"]
    with api.work(args) as first, api.work(args) as second:
        assert first.payload == second.payload == b"shared"
    assert tree(samba.share_dir / folder) == {}


def test_pushx_creates_folders_and_replaces_atomically(samba: Samba, folder: str) -> None:  # noqa: F811
    put(samba.share_dir, {f"{folder}/deep/er/f.bin": b"a much longer old content"})
    done = run("pushx", *samba.args(), "-smb-key", f"{folder}\\deep\\er\\f.bin", input=b"\x00new")
    assert done.returncode == 0, done.stderr
    assert run("pushx", *samba.args(), "-smb-key", f"{folder}/x/y/z", input=b"z").returncode == 0
    assert tree(samba.share_dir / folder) == {"deep/er/f.bin": b"\x00new", "x/y/z": b"z"}


@pytest.mark.parametrize(("tool", "extra", "message"), [
    ("procx", (), b"-smb-key or -smb-key-glob: one is required"),
    ("procx", ("-smb-key-glob", "[ab"), b"-smb-key-glob: invalid pattern"),
    ("procx", ("-smb-key", "k", "-smb-port", "0"), b"-smb-port: 0 is not a TCP port"),
    ("procx", ("-smb-key", "k", "-smb-clear-op", "mv"), b"-smb-clear-op mv would rename the file onto itself"),
    ("procx", ("-smb-key", "k", "-smb-fail-op", "copy"), b"-smb-fail-op (PROCX_SMB_FAIL_OP)"),
    ("pushx", (), b"-smb-key"),
])
def test_bad_settings_are_usage_errors(samba: Samba, tool: str, extra: tuple[str, ...],  # noqa: F811
                                       message: bytes) -> None:
    done = run(tool, *samba.args(), *extra)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_wrong_password_is_exit_69_one_line_without_the_password(samba: Samba) -> None:  # noqa: F811
    wrong = "Wrong-Pass-8086-recognisable"
    for tool in ("procx", "pushx"):
        done = run(tool, *samba.args(password=wrong), "-smb-key", "k", input=b"x", env=clean_env(LOG_LEVEL="debug"))
        assert done.returncode == 69, done.stderr
        assert f"login refused at 127.0.0.1:{samba.port} for user '{samba.user}'".encode() in done.stderr
        assert wrong.encode() not in done.stderr + done.stdout
    quiet = run("procx", *samba.args(password=wrong), "-smb-key", "k")
    assert quiet.stderr.count(b"\n") == 1


def test_an_empty_user_is_a_usage_error(samba: Samba) -> None:  # noqa: F811
    """smbprotocol has no anonymous NTLM login (the original tried one with an empty user)."""
    args = [a for a in samba.args() if a not in (samba.user, "-smb-user", samba.password, "-smb-pass")]
    done = run("procx", *args, "-smb-key", "k")
    assert done.returncode == 2, done.stderr
    assert b"-smb-user" in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_the_password_never_shows_in_debug_logs(samba: Samba, folder: str) -> None:  # noqa: F811
    put(samba.share_dir, {f"{folder}/j": b"x"})
    done = run("procx", *samba.args(), "-smb-key", f"{folder}/j", "-log-format", "json",
               env=clean_env(LOG_LEVEL="debug"))
    assert done.returncode == 0, done.stderr
    assert SMB_PASSWORD.encode() not in done.stderr + done.stdout


@pytest.mark.parametrize(("change", "message"), [
    (("-smb-port", "1"), b"cannot connect to 127.0.0.1:1"),
    (("-smb-share", "nosuchshare"), b"share 'nosuchshare'"),
])
def test_unreachable_server_or_share_is_exit_69(samba: Samba, change: tuple[str, str],  # noqa: F811
                                                message: bytes) -> None:
    done = run("procx", *samba.args(), *change, "-smb-key", "k")
    assert done.returncode == 69, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1
    assert SMB_PASSWORD.encode() not in done.stderr

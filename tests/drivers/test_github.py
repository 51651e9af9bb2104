"""github: the conformance suite against the project's FAKE GitHub API (tests/drivers/github_fake.py), the
original's selection and mv/rm-by-commit rules, branches and pull requests, and the fixes of its bugs."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import pytest

from core import api
from core.errors import ProviderError
from tests.conformance import PAYLOADS, Backend, Conformance
from tests.drivers.github_fake import FakeGitHub, Repo
from tests.support import clean_env, run

TOKEN = "test-token"
AUTHOR = ("-github-commit-name", "procx", "-github-commit-email", "procx@example.com",
          "-github-commit-message", "done")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub(token=TOKEN, read_only_tokens=("read-only",)).start()
    try:
        yield server
    finally:
        server.stop()


def new_repo(fake: FakeGitHub, files: dict[str, bytes] | None = None, **kw: object) -> tuple[str, Repo]:
    name = f"r-{uuid.uuid4().hex[:10]}"
    return name, fake.create_repo("acme", name, {"README.md": b"hi\n", **(files or {})}, **kw)  # type: ignore


def gh(fake: FakeGitHub, name: str, *extra: str, token: str = TOKEN) -> list[str]:
    return ["-driver", "github", "-github-api-url", fake.url, "-github-owner", "acme", "-github-repo", name,
            "-github-token", token, *extra]


class GithubBackend(Backend):
    driver = "github"
    redelivery_wait = 0.5

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.name, self.repo = new_repo(fake)

    def common_args(self) -> list[str]:
        return [*gh(self.fake, self.name), *AUTHOR]

    def push_args(self, n: int) -> list[str]:
        return ["-github-file", f"jobs/job-{n:04d}"]

    def procx_args(self) -> list[str]:
        return ["-github-file-prefix", "jobs/", "-github-clear-op", "rm"]

    def pending(self) -> int:
        with self.fake.lock:
            return sum(1 for p in self.repo.files() if p.startswith("jobs/"))


class TestGithubConformance(Conformance):
    @pytest.fixture
    def backend(self, fake: FakeGitHub) -> GithubBackend:
        return GithubBackend(fake)


# -- selection ----------------------------------------------------------------------------------------------------

def test_prefix_walks_recursively_and_regex_matches_path_or_base_name(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"in/b/deep.txt": b"deep", "in/a.txt": b"a", "other/x.json": b"x",
                                 "in-not/z": b"z"})
    assert api.procx(gh(fake, name, "-github-file-prefix", "in/b")) == b"deep"
    assert api.procx(gh(fake, name, "-github-file-prefix", "in/")) == b"a"
    assert api.procx(gh(fake, name, "-github-file-regex", r"^x\.json$")) == b"x"  # base name
    assert api.procx(gh(fake, name, "-github-file-regex", r"^other/")) == b"x"  # full path
    assert api.procx(gh(fake, name, "-github-file", "in/b/deep.txt")) == b"deep"


def test_no_match_is_no_work(fake: FakeGitHub, tmp_path) -> None:
    name, _ = new_repo(fake)
    for selector in (("-github-file", "absent"), ("-github-file-prefix", "nope/"), ("-github-file-regex", "zz")):
        done = run("procx", *gh(fake, name, *selector), "touch", str(tmp_path / "ran"))
        assert (done.returncode, done.stdout) == (0, b""), done.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("ref", ["feature", "heads/feature", "refs/heads/feature"])
def test_ref_spellings_for_reading_and_committing(fake: FakeGitHub, ref: str) -> None:
    name, repo = new_repo(fake)
    repo.commit_files({"q/j": b"on feature"}, branch="feature")
    done = run("procx", *gh(fake, name, "-github-ref", ref, "-github-file-prefix", "q/", "-github-clear-op", "rm",
                            *AUTHOR))
    assert (done.returncode, done.stdout) == (0, b"on feature"), done.stderr
    assert "q/j" not in repo.files("feature")
    assert repo.files() == {"README.md": b"hi\n"}  # main untouched


# -- clear/fail ops --------------------------------------------------------------------------------------------------

def test_mv_with_location_template_keeps_bytes_mode_and_author(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"inbox/sub/a.bin": PAYLOADS["non-utf8"]})
    done = run("procx", *gh(fake, name, "-github-file-prefix", "inbox/", "-github-clear-op", "mv",
                            "-github-clear-location", "done/{{key}}.ok", "-pass-work-as-stdin", *AUTHOR), "true")
    assert done.returncode == 0, done.stderr
    files = repo.files()
    assert files["done/a.bin.ok"] == PAYLOADS["non-utf8"]
    assert "inbox/sub/a.bin" not in files
    head = repo.log()[0]
    assert head["author"]["name"] == "procx" and head["author"]["email"] == "procx@example.com"
    assert head["message"] == "done"


def test_irregular_location_variable(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"in/j": b"x"})
    env = clean_env(PROCX_GITHUB_FAIL_OP_LOCATION="failed/{{key}}")
    done = run("procx", *gh(fake, name, "-github-file", "in/j", "-github-fail-op", "mv", *AUTHOR), "false", env=env)
    assert done.returncode == 1, done.stderr
    assert repo.files() == {"README.md": b"hi\n", "failed/j": b"x"}


def test_fail_is_independent_of_clear_and_makes_no_empty_commit(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"in/j": b"x"})
    commits = len(repo.log())
    # only a fail op: failure moves the file (the original skipped fail handling without a clear op)
    done = run("procx", *gh(fake, name, "-github-file", "in/j", "-github-fail-op", "rm", *AUTHOR), "false")
    assert done.returncode == 1, done.stderr
    assert "in/j" not in repo.files()
    assert len(repo.log()) == commits + 1
    # only a clear op: failure leaves the file and makes no commit (the original made an empty one)
    repo.commit_files({"in/k": b"y"})
    commits = len(repo.log())
    done = run("procx", *gh(fake, name, "-github-file", "in/k", "-github-clear-op", "rm", *AUTHOR), "false")
    assert done.returncode == 1, done.stderr
    assert repo.files()["in/k"] == b"y"
    assert len(repo.log()) == commits


def test_clear_of_a_file_already_gone_is_a_no_op(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"in/j": b"x"})
    source_args = gh(fake, name, "-github-file", "in/j", "-github-clear-op", "rm", *AUTHOR)
    with api.work(source_args) as work:  # a second procx takes and clears the same file meanwhile
        assert work is not None and work.payload == b"x"
        assert api.procx(source_args) == b"x"
        commits = len(repo.log())
    assert len(repo.log()) == commits
    assert "in/j" not in repo.files()


def test_a_moved_head_is_retried_not_forced(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"in/j": b"x"})

    def race(method: str, path: str) -> None:  # someone commits just before procx moves the ref
        if method == "PATCH" and name in path:
            fake.hooks.remove(race)
            repo.commit_files({"other": b"someone else's commit"})

    fake.hooks.append(race)
    try:
        assert api.procx(gh(fake, name, "-github-file", "in/j", "-github-clear-op", "rm", *AUTHOR)) == b"x"
    finally:
        if race in fake.hooks:
            fake.hooks.remove(race)
    assert sum(1 for m, p, _ in fake.requests if m == "PATCH" and name in p) == 2  # refused once, then retried
    files = repo.files()
    assert files["other"] == b"someone else's commit" and "in/j" not in files


# -- branches and pull requests -------------------------------------------------------------------------------------

def test_clear_on_a_branch_with_a_pull_request_and_branch_reuse(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"in/a": b"a", "in/b": b"b"})
    args = gh(fake, name, "-github-file-prefix", "in/", "-github-clear-op", "mv", "-github-clear-location",
              "done/{{key}}", "-github-base-branch", "main", "-github-branch", "procx-done", "-github-open-pr",
              "-github-pr-title", "Processed", "-github-pr-body", "by procx", *AUTHOR)
    assert run("procx", *args, "true").returncode == 0
    assert repo.files()["in/a"] == b"a"  # the base is untouched
    assert repo.files("procx-done") == {"README.md": b"hi\n", "in/b": b"b", "done/a": b"a"}
    [pr] = repo.pulls
    assert (pr["title"], pr["body"], pr["head"]["label"], pr["base"]["ref"], pr["maintainer_can_modify"]) == (
        "Processed", "by procx", "acme:procx-done", "main", True)
    # the base still holds in/a, so it is taken again; the existing branch and pull request are reused
    done = run("procx", *args, "true")
    assert done.returncode == 0, done.stderr
    assert len(repo.pulls) == 1
    assert repo.files("procx-done")["done/a"] == b"a"


def test_open_pr_without_branch_uses_a_random_branch(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake)
    done = run("pushx", *gh(fake, name, "-github-file", "data/new.bin", "-github-base-branch", "main",
                            "-github-open-pr", *AUTHOR), input=b"\x00\xff")
    assert done.returncode == 0, done.stderr
    [pr] = repo.pulls
    assert pr["title"] == "done" and pr["head"]["ref"].startswith("procx-")
    assert repo.files(pr["head"]["ref"])["data/new.bin"] == b"\x00\xff"
    assert "data/new.bin" not in repo.files()


def test_commit_fields_are_checked_before_a_branch_is_created(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"in/j": b"x"})
    done = run("procx", *gh(fake, name, "-github-file", "in/j", "-github-clear-op", "rm",
                            "-github-branch", "b1", "-github-base-branch", "main"), "true")
    assert done.returncode == 2
    assert b"-github-commit-name is required" in done.stderr
    assert set(repo.refs) == {"heads/main"}
    assert repo.files()["in/j"] == b"x"


# -- pushx --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [PAYLOADS["non-utf8"], PAYLOADS["nul-bytes"], PAYLOADS["one-mib"] * 3],
                         ids=["non-utf8", "nul-bytes", "3-mib"])
def test_pushx_commits_binary_and_large_files(fake: FakeGitHub, payload: bytes) -> None:
    name, repo = new_repo(fake)
    done = run("pushx", *gh(fake, name, "-github-file", "f.bin", *AUTHOR), input=payload)
    assert done.returncode == 0, done.stderr
    assert repo.files()["f.bin"] == payload
    # procx reads it back byte for byte (over 1 MiB the contents API gives no content: the blob is read)
    assert api.procx(gh(fake, name, "-github-file", "f.bin")) == payload


def test_pushx_replaces_a_file_and_defaults_to_the_default_branch(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake, {"f": b"old"}, default_branch="trunk")
    assert run("pushx", *gh(fake, name, "-github-file", "f", *AUTHOR), input=b"new").returncode == 0
    assert repo.files("trunk")["f"] == b"new"
    assert [c["message"] for c in repo.log("trunk")][:2] == ["done", "setup"]


def test_token_is_sent_as_bearer(fake: FakeGitHub) -> None:
    name, _ = new_repo(fake, {"j": b"x"})
    fake.requests.clear()
    assert api.procx(gh(fake, name, "-github-file", "j")) == b"x"
    assert {auth for _, path, auth in fake.requests if name in path} == {f"Bearer {TOKEN}"}


# -- errors ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "message"), [
    ("bad-token", b"HTTP 401 bad or expired credentials"),
    ("missing-repo", b"HTTP 404 not found"),
    ("read-only", b"HTTP 403 forbidden"),
    ("missing-ref", b"ref heads/nope does not exist"),
    ("empty-repo", b"HTTP 409 conflict"),
])
def test_provider_errors_are_one_line_and_name_the_repo(fake: FakeGitHub, case: str, message: bytes) -> None:
    name, repo = new_repo(fake, {"in/j": b"x"})
    args = gh(fake, name, "-github-file", "in/j", "-github-clear-op", "rm", *AUTHOR)
    if case == "bad-token":
        args = gh(fake, name, "-github-file", "in/j", token="wrong-secret")
    elif case == "missing-repo":
        args = gh(fake, "no-such-repo", "-github-file", "in/j")
    elif case == "read-only":
        args = gh(fake, name, "-github-file", "in/j", "-github-clear-op", "rm", *AUTHOR, token="read-only")
    elif case == "missing-ref":
        args += ["-github-ref", "nope"]
    elif case == "empty-repo":
        name = f"empty-{uuid.uuid4().hex[:8]}"
        fake.create_repo("acme", name)
        args = gh(fake, name, "-github-file", "in/j")
    done = run("procx", *args, "true")
    assert done.returncode == 69, done.stderr
    assert message in done.stderr
    assert b"acme/" in done.stderr
    assert done.stderr.count(b"\n") == 1
    assert b"wrong-secret" not in done.stderr and TOKEN.encode() not in done.stderr
    if case != "empty-repo":
        assert repo.files()["in/j"] == b"x"  # nothing consumed


def test_pull_request_refusal_is_a_clear_error(fake: FakeGitHub) -> None:
    name, repo = new_repo(fake)
    repo.commit_files({"x": b"x"}, branch="feature")  # -github-ref wins over the base branch for the base commit
    done = run("pushx", *gh(fake, name, "-github-file", "f", "-github-ref", "feature", "-github-branch", "b",
                            "-github-base-branch", "missing-base", "-github-open-pr", *AUTHOR), input=b"x")
    assert done.returncode == 69
    assert b"open a pull request from b into missing-base" in done.stderr
    assert b"HTTP 422" in done.stderr


def test_unreachable_api_is_a_provider_error(fake: FakeGitHub) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["-driver", "github", "-github-api-url", f"http://127.0.0.1:{port}", "-github-owner", "acme",
            "-github-repo", "r", "-github-file", "j", "-github-token", "s3cret"]
    done = run("procx", *args)
    assert done.returncode == 69
    assert f"cannot reach the API at 127.0.0.1:{port}".encode() in done.stderr
    assert b"s3cret" not in done.stderr
    with pytest.raises(ProviderError):
        api.procx(args)


@pytest.mark.parametrize(("side", "extra", "message"), [
    ("procx", ("-github-owner", "acme", "-github-repo", "r"), b"-github-file, -github-file-prefix or"),
    ("procx", ("-github-owner", "acme", "-github-repo", "r", "-github-file-regex", "("), b"invalid regular exp"),
    ("procx", ("-github-owner", "acme", "-github-repo", "r", "-github-file", "f", "-github-clear-op", "mv", *AUTHOR),
     b"-github-clear-location is required"),
    ("procx", ("-github-owner", "acme", "-github-repo", "r", "-github-file", "f", "-github-fail-op", "cp"),
     b"-github-fail-op (PROCX_GITHUB_FAIL_OP)"),
    ("procx", ("-github-file", "f"), b"-github-owner and -github-repo are required"),
    ("pushx", ("-github-owner", "acme", "-github-repo", "r", *AUTHOR), b"-github-file is required"),
    ("pushx", ("-github-owner", "acme", "-github-repo", "r", "-github-file", "f", "-github-ref", "tags/v1",
               "-github-branch", "b", *AUTHOR), b"-github-base-branch is required"),
    ("pushx", ("-github-owner", "acme", "-github-repo", "r", "-github-file", "f", "-github-api-url", "ftp://x",
               *AUTHOR), b"-github-api-url"),
])
def test_bad_settings_are_usage_errors(side: str, extra: tuple[str, ...], message: bytes) -> None:
    done = run(side, "-driver", "github", *extra, input=b"x")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_fake_contents_api_lists_directories_and_withholds_large_content(fake: FakeGitHub) -> None:
    import urllib.request

    name, _ = new_repo(fake, {"d/a": b"a", "d/e/f": b"f", "big": b"x" * ((1 << 20) + 1)})

    def get(path: str) -> object:
        req = urllib.request.Request(f"{fake.url}/repos/acme/{name}/contents/{path}",
                                     headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(req) as response:
            return json.loads(response.read())

    assert [(e["type"], e["path"]) for e in get("d")] == [("file", "d/a"), ("dir", "d/e")]  # type: ignore
    big = get("big?ref=main")
    assert (big["encoding"], big["content"], big["size"]) == ("none", "", (1 << 20) + 1)  # type: ignore

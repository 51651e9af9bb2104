"""github: procx takes a file of a repository (then mv/rm by commit); pushx commits one file.

Plain HTTPS calls to the GitHub REST API with the standard library (no client library). Files are read through
the git data API (a recursive tree for -github-file-prefix/-regex, the contents API for an exact -github-file,
blobs for the bytes), so payloads are binary-safe and up to GitHub's 100 MB blob limit.

Fixes over the original:
- the fail op is independent of the clear op (the original skipped fail handling when no clear op was set, and
  made an empty commit on failure when only the clear op was set); an empty op does nothing, no commit;
- -github-ref is accepted as `main`, `heads/main` or `refs/heads/main` for both reading and committing;
- an existing -github-branch is reused (the commit goes on top of it) instead of failing, and a pull request that
  is already open for it is kept (the new commit joins it);
- commit author and message are checked before anything is written (no branch is left behind);
- a ref moved by someone else meanwhile (non-fast-forward) is retried on the new head, never forced;
- clearing a file that is already gone (taken and cleared by another procx) is a no-op, not an error;
- with neither -github-ref nor -github-base-branch the repository's default branch is used;
- pushx uploads the payload as a base64 blob (the original sent it as text, mangling binary data).
Extension: -github-api-url (GitHub Enterprise Server: https://HOST/api/v3).
"""

from __future__ import annotations

import base64
import json
import re
import uuid

from core.errors import ProviderError
from core.options import BOTH, PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import check_selection, selector_options

DEFAULT_API = "https://api.github.com"
TIMEOUT = 60.0
RETRIES = 5  # attempts when the ref moved between reading it and updating it


def _after(phase: str, when: str) -> list[Option]:
    return [
        Option(f"github-{phase}-op", sides=PROCX, choices=("mv", "rm"),
               help=f"what to do with the file {when}, by commit: mv or rm (empty: leave it, no commit)"),
        Option(f"github-{phase}-location", sides=PROCX, env={PROCX: f"PROCX_GITHUB_{phase.upper()}_OP_LOCATION"},
               help=f"path to move the file to {when}; {{{{key}}}} is the file's base name"),
    ]


def _validate(config) -> None:
    c = config
    if not c["github-owner"] or not c["github-repo"]:
        raise ValueError("-github-owner and -github-repo are required")
    url = c["github-api-url"]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"-github-api-url: {url!r} is not an http(s) URL")
    committing = config.side == PUSHX
    if config.side == PROCX:
        check_selection(c, "github", "file", "location")
        committing = bool(c["github-clear-op"] or c["github-fail-op"])
    elif not c["github-file"]:
        raise ValueError("-github-file is required: the path of the file to commit")
    if committing:
        for what in ("name", "email", "message"):
            if not c[f"github-commit-{what}"]:
                raise ValueError(f"-github-commit-{what} is required to commit")
    if (c["github-branch"] or c["github-open-pr"]) and committing:
        _base_branch(c)  # raises when no base branch can be named


def _git_ref(ref: str) -> str:
    """`main`, `heads/main` or `refs/heads/main` -> `heads/main` (tags: `tags/v1`, `refs/tags/v1`)."""
    ref = ref.strip().strip("/")
    if ref.startswith("refs/"):
        return ref[5:]
    if ref.startswith(("heads/", "tags/")):
        return ref
    return "heads/" + ref


def _base_branch(c) -> str:
    """The branch a new branch starts from and a pull request targets ('' = the repository's default)."""
    if c["github-base-branch"]:
        return c["github-base-branch"]
    if c["github-ref"]:
        ref = _git_ref(c["github-ref"])
        if not ref.startswith("heads/"):
            raise ValueError("-github-base-branch is required with -github-branch/-github-open-pr "
                             "when -github-ref is not a branch")
        return ref[len("heads/"):]
    return ""


SPEC = DriverSpec(
    "github",
    "a GitHub repository: each file is one unit of work",
    [
        Option("github-owner", help="owner (user or organisation) of the repository"),
        Option("github-repo", help="name of the repository"),
        Option("github-token", secret=True, help="OAuth/personal access token (empty: unauthenticated)"),
        Option("github-api-url", default=DEFAULT_API, extension=True, advanced=True,
               help="base URL of the REST API (GitHub Enterprise Server: https://HOST/api/v3)"),
        *selector_options("github", "file", key_sides=BOTH),
        Option("github-ref", help="ref to read from and commit on: main, heads/main or refs/heads/main "
                                  "(empty: the base branch, else the repository's default branch)"),
        Option("github-base-branch", help="branch to commit on, and the base of a pull request"),
        Option("github-branch", help="commit on this branch, created from the base if missing "
                                     "(empty: commit on the base)"),
        Option("github-open-pr", "bool", help="open a pull request after committing (branch: a random name if unset)"),
        Option("github-commit-name", required=PUSHX, help="commit author name (needed for any commit)"),
        Option("github-commit-email", required=PUSHX, help="commit author e-mail (needed for any commit)"),
        Option("github-commit-message", required=PUSHX, help="commit message (needed for any commit)"),
        Option("github-pr-title", help="pull request title (empty: the commit message)"),
        Option("github-pr-body", help="pull request description"),
        *_after("clear", "after success"),
        *_after("fail", "after failure"),
    ],
    source="drivers.github:GithubSource",
    sink="drivers.github:GithubSink",
    extra="",
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="none (GitHub has no lease): the file stays in the repository until the clear commit, so a crash "
             "before it leaves the file to be taken again; two procx on one repository may take the same file",
        fail="-github-fail-op: mv or rm by commit, or left in place (offered again); independent of the clear op",
        pushx="one commit adding or replacing -github-file (base64 blob), on the base branch or a branch, "
              "optionally with a pull request; the ref is moved without force (retried on a moved head)",
        tested="project fake of the GitHub REST API (tests/drivers/github_fake.py); not verified against github.com",
    ),
)


class GitHub:
    """The REST calls both sides make, with one-line errors naming the repository and the operation."""

    def __init__(self, config) -> None:
        c = config
        self.owner, self.repo = c["github-owner"], c["github-repo"]
        self.base = c["github-api-url"].rstrip("/")
        self.headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                        "User-Agent": "procx-tui"}
        if c["github-token"]:
            self.headers["Authorization"] = f"Bearer {c['github-token']}"
        self.name = f"{self.owner}/{self.repo}"

    def call(self, method: str, path: str, what: str, body: object = None, *, missing_ok: bool = False,
             accept: tuple[int, ...] = ()) -> tuple[int, object]:
        """One request under /repos/OWNER/REPO; returns (status, decoded JSON). 404 -> (404, None) with
        missing_ok; statuses in `accept` are returned instead of raised."""
        import urllib.error
        import urllib.parse
        import urllib.request

        url = f"{self.base}/repos/{urllib.parse.quote(self.owner)}/{urllib.parse.quote(self.repo)}{path}"
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = _message(exc.read())
            if status == 404 and missing_ok:
                return 404, None
            if status in accept:
                return status, {"message": detail}
            raise ProviderError(f"driver github: {self.name}: cannot {what}: {_explain(status, detail)}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            host = urllib.parse.urlsplit(self.base)
            port = host.port or (443 if host.scheme == "https" else 80)
            raise ProviderError(f"driver github: cannot reach the API at {host.hostname}:{port} "
                                f"to {what} on {self.name}: {reason}") from None
        except json.JSONDecodeError:
            raise ProviderError(f"driver github: {self.name}: cannot {what}: the API answered non-JSON") from None

    # -- reading --------------------------------------------------------------------------------------------
    def default_branch(self) -> str:
        return str(self.call("GET", "", "read the repository")[1]["default_branch"])  # type: ignore[index]

    def ref_sha(self, ref: str, what: str = "read the ref", missing_ok: bool = False) -> str | None:
        status, data = self.call("GET", f"/git/ref/{_quote_path(ref)}", f"{what} {ref}", missing_ok=True)
        if status == 404 or not isinstance(data, dict) or "object" not in data:  # a prefix answers a list
            if missing_ok:
                return None
            raise ProviderError(f"driver github: {self.name}: cannot {what}: ref {ref} does not exist (HTTP 404)")
        return str(data["object"]["sha"])

    def commit(self, sha: str) -> dict:
        return self.call("GET", f"/git/commits/{sha}", "read the commit")[1]  # type: ignore[return-value]

    def tree(self, sha: str, recursive: bool) -> dict:
        query = "?recursive=1" if recursive else ""
        return self.call("GET", f"/git/trees/{sha}{query}", "list the files")[1]  # type: ignore[return-value]

    def blob(self, sha: str) -> bytes:
        data = self.call("GET", f"/git/blobs/{sha}", "read the file")[1]
        return _decode(data)  # type: ignore[arg-type]

    def files(self, commit_sha: str):
        """(path, mode, blob sha) of every file at the commit, depth first in git's (sorted) order."""
        tree_sha = self.commit(commit_sha)["tree"]["sha"]
        listing = self.tree(tree_sha, recursive=True)
        if not listing.get("truncated"):
            for entry in listing["tree"]:
                if entry["type"] == "blob":
                    yield entry["path"], entry["mode"], entry["sha"]
            return
        yield from self._walk(tree_sha, "")  # too large for one listing: one directory at a time

    def _walk(self, tree_sha: str, prefix: str):
        for entry in self.tree(tree_sha, recursive=False)["tree"]:
            path = prefix + entry["path"]
            if entry["type"] == "tree":
                yield from self._walk(entry["sha"], path + "/")
            elif entry["type"] == "blob":
                yield path, entry["mode"], entry["sha"]

    def content(self, path: str, ref: str) -> dict | None:
        """The contents API entry of one file at `ref` (a commit sha); None when there is no such file."""
        import urllib.parse

        status, data = self.call("GET", f"/contents/{_quote_path(path)}?ref={urllib.parse.quote(ref)}",
                                 f"read {path}", missing_ok=True)
        if status == 404 or not isinstance(data, dict) or data.get("type") != "file":
            return None
        return data

    # -- writing --------------------------------------------------------------------------------------------
    def create_branch(self, branch: str, sha: str) -> bool:
        """Create refs/heads/<branch> at sha; False when it exists already (it is then reused)."""
        status, data = self.call("POST", "/git/refs", f"create the branch {branch}",
                                 {"ref": f"refs/heads/{branch}", "sha": sha}, accept=(422,))
        if status == 422:
            if "already exists" in str(data.get("message", "")):  # type: ignore[union-attr]
                return False
            raise ProviderError(f"driver github: {self.name}: cannot create the branch {branch}: "
                                f"{_explain(422, str(data.get('message')))}")  # type: ignore[union-attr]
        return True

    def create_blob(self, payload: bytes) -> str:
        data = self.call("POST", "/git/blobs", "upload the file",
                         {"content": base64.b64encode(payload).decode("ascii"), "encoding": "base64"})[1]
        return str(data["sha"])  # type: ignore[index]

    def commit_change(self, ref: str, change, author: dict, message: str, what: str) -> str | None:
        """Commit on `ref` the tree entries `change(head_commit_sha)` returns (None: nothing to do), moving the
        ref without force; a head moved meanwhile is re-read and the commit rebuilt. Returns the commit sha."""
        for _ in range(RETRIES):
            head = self.ref_sha(ref)
            entries = change(head)
            if entries is None:
                return None
            base_tree = self.commit(head)["tree"]["sha"]  # type: ignore[arg-type]
            tree = self.call("POST", "/git/trees", what, {"base_tree": base_tree, "tree": entries})[1]
            commit = self.call("POST", "/git/commits", what, {
                "message": message, "tree": tree["sha"], "parents": [head], "author": author})[1]  # type: ignore
            status, data = self.call("PATCH", f"/git/refs/{_quote_path(ref)}", f"{what} (move {ref})",
                                     {"sha": commit["sha"], "force": False}, accept=(409, 422))  # type: ignore
            if status < 300:
                return str(commit["sha"])  # type: ignore[index]
            if "fast forward" not in str(data.get("message", "")).lower():  # type: ignore[union-attr]
                raise ProviderError(f"driver github: {self.name}: cannot {what} (move {ref}): "
                                    f"{_explain(status, str(data.get('message')))}")  # type: ignore[union-attr]
        raise ProviderError(f"driver github: {self.name}: cannot {what}: {ref} kept moving ({RETRIES} attempts)")

    def open_pr(self, branch: str, base: str, title: str, body: str) -> None:
        status, data = self.call("POST", "/pulls", f"open a pull request from {branch} into {base}", {
            "title": title, "body": body, "head": f"{self.owner}:{branch}", "base": base,
            "maintainer_can_modify": True}, accept=(422,))
        if status == 422:
            text = json.dumps(data) if not isinstance(data, dict) else str(data.get("message", ""))
            if "already exists" not in text:
                raise ProviderError(f"driver github: {self.name}: cannot open a pull request from {branch} "
                                    f"into {base}: {_explain(422, text)}")


def _quote_path(path: str) -> str:
    import urllib.parse

    return urllib.parse.quote(path, safe="/")


def _decode(data: dict) -> bytes:
    if data.get("encoding") == "base64":
        return base64.b64decode(data.get("content") or "")
    return str(data.get("content") or "").encode()


def _message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw[:200].decode(errors="replace").strip()
    if not isinstance(data, dict):
        return ""
    text = str(data.get("message", ""))
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        text += " (" + "; ".join(str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                                 for e in errors) + ")"
    return text.replace("\n", " ")


def _explain(status: int, detail: str) -> str:
    hint = {
        401: "bad or expired credentials (check -github-token)",
        403: "forbidden (the token lacks permission, or the rate limit was hit)",
        404: "not found (repository, ref or path; a private repository answers 404 without a valid token)",
        409: "conflict (e.g. the repository is empty)",
        422: "rejected",
    }.get(status, "failed")
    return f"HTTP {status} {hint}" + (f": {detail}" if detail else "")


class _Side:
    """What both sides resolve at open(): the API, the base ref, the branch to commit on."""

    config: object

    def _setup(self) -> None:
        c = self.config
        self.gh = GitHub(c)
        repo = self.gh.call("GET", "", "read the repository")[1]
        default = str(repo.get("default_branch") or "main")  # type: ignore[union-attr]
        self.read_ref = _git_ref(c["github-ref"]) if c["github-ref"] else (
            "heads/" + (c["github-base-branch"] or default))
        self.base_branch = _base_branch(c) or (c["github-base-branch"] or default)
        self.author = {"name": c["github-commit-name"], "email": c["github-commit-email"]}
        self.message = c["github-commit-message"]

    def _target_ref(self) -> tuple[str, str]:
        """The ref to commit on (creating the branch when asked) and the branch name ('' = no branch)."""
        c = self.config
        branch = c["github-branch"] or (f"procx-{uuid.uuid4()}" if c["github-open-pr"] else "")
        if not branch:
            return self.read_ref, ""
        base_sha = self.gh.ref_sha(self.read_ref, "read the base ref")
        self.gh.create_branch(branch, base_sha)  # type: ignore[arg-type]
        return f"heads/{branch}", branch

    def _pr(self, branch: str) -> None:
        c = self.config
        if branch and c["github-open-pr"]:
            self.gh.open_pr(branch, self.base_branch, c["github-pr-title"] or self.message, c["github-pr-body"])


class GithubSource(_Side, Source):
    def open(self) -> None:
        self._setup()
        c = self.config
        self.regex = re.compile(c["github-file-regex"]) if c["github-file-regex"] else None

    def _matches(self, head: str):
        c = self.config
        prefix = c["github-file-prefix"]
        for path, mode, sha in self.gh.files(head):
            if path.startswith(prefix) if prefix else self._regex_match(path):
                yield path, mode, sha

    def _regex_match(self, path: str) -> bool:
        """The original matches the full path or the base name."""
        return bool(self.regex and (self.regex.search(path) or self.regex.search(path.rsplit("/", 1)[-1])))

    def _select(self) -> tuple[str, str, str, str] | None:
        head = self.gh.ref_sha(self.read_ref)
        key = self.config["github-file"]
        if key:
            entry = self.gh.content(key, head)  # type: ignore[arg-type]
            return None if entry is None else (key, "100644", entry["sha"], head)  # type: ignore[return-value]
        for path, mode, sha in self._matches(head):  # type: ignore[arg-type]
            return path, mode, sha, head  # type: ignore[return-value]
        return None

    def depth(self) -> int:
        """Files waiting (matching the selector) at the ref."""
        if self.config["github-file"]:
            return int(self._select() is not None)
        return sum(1 for _ in self._matches(self.gh.ref_sha(self.read_ref)))  # type: ignore[arg-type]

    def get(self, wait: float) -> Work | None:
        found = self._select()
        if found is None:
            return None
        path, mode, sha, _ = found
        return Work(self.gh.blob(sha), path, handle=(path, mode, sha))

    def clear(self, work: Work) -> None:
        self._apply("clear", work.handle)

    def fail(self, work: Work) -> None:
        self._apply("fail", work.handle)

    def _apply(self, phase: str, handle: tuple[str, str, str]) -> None:
        c = self.config
        op = c[f"github-{phase}-op"]
        if not op:
            return  # the file stays where it is (offered again); no empty commit
        path, mode, sha = handle
        target = c[f"github-{phase}-location"].replace("{{key}}", path.rsplit("/", 1)[-1]) if op == "mv" else ""
        ref, branch = self._target_ref()

        def change(head: str) -> list[dict] | None:
            current = self.gh.content(path, head)
            if current is None:
                return None  # already moved or removed (by another procx)
            entries = [{"path": path, "mode": mode, "type": "blob", "sha": None}]
            if op == "mv" and target != path:
                entries.append({"path": target, "mode": mode, "type": "blob", "sha": current["sha"] or sha})
            elif op == "mv":
                return None
            return entries

        what = f"{'move' if op == 'mv' else 'remove'} {path}" + (f" to {target}" if op == "mv" else "")
        self.gh.commit_change(ref, change, dict(self.author), self.message, what)
        self._pr(branch)


class GithubSink(_Side, Sink):
    def open(self) -> None:
        self._setup()

    def push(self, payload: bytes) -> str | None:
        path = self.config["github-file"].strip("/")
        blob = self.gh.create_blob(payload)
        ref, branch = self._target_ref()

        def change(head: str) -> list[dict]:
            return [{"path": path, "mode": "100644", "type": "blob", "sha": blob}]

        sha = self.gh.commit_change(ref, change, dict(self.author), self.message, f"commit {path}")
        self._pr(branch)
        return sha

"""A FAKE of the GitHub REST API (not GitHub): the endpoints the github driver uses, for its tests.

No GitHub-compatible server (GitHub, Gitea, Forgejo) can be installed here, so this in-memory stand-in is
served by http.server in a thread on 127.0.0.1 (a free port). It is only as faithful as the documented API.

Implemented (under /repos/{owner}/{repo}):
  GET    ""                         repository: full_name, default_branch, private
  GET    /contents/{path}?ref=      a file (type "file", sha, size, base64 `content` wrapped at 60 columns; files
                                    over 1 MiB answer encoding "none" and empty content, like GitHub) or a
                                    directory listing (a JSON list of entries); ref = branch, tag, refs/..., or sha
  GET    /git/ref/{ref}             {"ref": "refs/heads/main", "object": {"sha", "type": "commit"}}
  POST   /git/refs                  201; 422 "Reference already exists"; 422 on a name without refs/ + 2 slashes
  PATCH  /git/refs/{ref}            200; 422 "Update is not a fast forward" unless force or the new commit descends
                                    from the old one; 422 "Reference does not exist"
  GET    /git/commits/{sha}         sha, tree.sha, parents[].sha, author, committer, message
  POST   /git/commits               201; 422 when the tree or a parent is unknown
  GET    /git/trees/{sha}[?recursive=1]   entries {path, mode, type, sha[, size]}, truncated false
  POST   /git/trees                 201; base_tree + entries with sha (null deletes), or content (text)
  GET    /git/blobs/{sha}           base64 content
  POST   /git/blobs                 201; content with encoding "utf-8" or "base64"
  POST   /pulls                     201 {number, html_url, head.ref, base.ref, ...}; 422 when the head branch is
                                    unknown or a pull request for head -> base is already open
Copied behaviours: git object ids are real git SHA-1s (blob/tree/commit objects), error bodies are
{"message", "documentation_url"} (422 adds "errors"), 401 "Bad credentials" for a wrong token, 404 for a private
repository without a token, 403 for a read-only token writing, 409 "Git Repository is empty." for git data on an
empty repository, POST answers 201.
Not implemented: PUT/DELETE contents, pagination, rate limits (no 403/429 throttling), ETags, raw media types,
submodules and symlinks, tags objects, merges of pull requests, webhooks, other endpoints (answer 404).
Deleting a path that is not in the base tree answers 422 here (GitHub's exact answer was not verified).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

DOCS = "https://docs.github.com/rest"
LARGE = 1 << 20  # the contents API stops inlining content above 1 MiB


def _sha(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "".join(text[i:i + 60] + "\n" for i in range(0, len(text), 60))


class HttpError(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


class Repo:
    def __init__(self, default_branch: str = "main", private: bool = True) -> None:
        self.default_branch = default_branch
        self.private = private
        self.objects: dict[str, tuple[str, object]] = {}  # sha -> ("blob", bytes) | ("tree", entries) | ("commit", {})
        self.refs: dict[str, str] = {}  # "heads/main" -> commit sha
        self.pulls: list[dict] = []

    # -- objects --------------------------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        sha = _sha("blob", data)
        self.objects[sha] = ("blob", data)
        return sha

    def put_tree(self, entries: dict[str, tuple[str, str, str]]) -> str:
        """entries: name -> (mode, type, sha)."""
        def order(name: str) -> bytes:
            return (name + "/" if entries[name][1] == "tree" else name).encode()
        body = b"".join(f"{entries[n][0].lstrip('0')} {n}\0".encode() + bytes.fromhex(entries[n][2])
                        for n in sorted(entries, key=order))
        sha = _sha("tree", body)
        self.objects[sha] = ("tree", {n: entries[n] for n in sorted(entries, key=order)})
        return sha

    def put_commit(self, tree: str, parents: list[str], author: dict, message: str) -> str:
        who = f"{author.get('name', '')} <{author.get('email', '')}> 0 +0000"
        text = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents) + f"author {who}\ncommitter {who}\n\n"
        sha = _sha("commit", (text + message).encode())
        self.objects[sha] = ("commit", {"tree": tree, "parents": list(parents), "author": dict(author),
                                        "message": message})
        return sha

    def get(self, sha: str, kind: str) -> object:
        obj = self.objects.get(sha)
        if obj is None or obj[0] != kind:
            raise HttpError(404, "Not Found")
        return obj[1]

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        """path -> (mode, blob sha) of every file below a tree."""
        out: dict[str, tuple[str, str]] = {}
        for name, (mode, kind, sha) in self.get(tree_sha, "tree").items():  # type: ignore[union-attr]
            if kind == "tree":
                out.update(self.flatten(sha, f"{prefix}{name}/"))
            else:
                out[prefix + name] = (mode, sha)
        return out

    def build(self, files: dict[str, tuple[str, str]]) -> str:
        """A (nested) tree from path -> (mode, blob sha)."""
        top: dict[str, tuple[str, str, str]] = {}
        subdirs: dict[str, dict[str, tuple[str, str]]] = {}
        for path, entry in files.items():
            head, _, rest = path.partition("/")
            if rest:
                subdirs.setdefault(head, {})[rest] = entry
            else:
                top[head] = (entry[0], "blob", entry[1])
        for name, sub in subdirs.items():
            top[name] = ("040000", "tree", self.build(sub))
        return self.put_tree(top)

    def descends(self, new: str, old: str) -> bool:
        todo, seen = [new], set()
        while todo:
            sha = todo.pop()
            if sha == old:
                return True
            if sha not in seen:
                seen.add(sha)
                todo.extend(self.get(sha, "commit")["parents"])  # type: ignore[index]
        return False

    # -- helpers for tests ------------------------------------------------------------------------------------
    def commit_files(self, files: dict[str, bytes], branch: str | None = None, message: str = "setup") -> str:
        """Commit `files` (added/replaced) on a branch (created when missing) and return the commit sha."""
        branch = branch or self.default_branch
        head = self.refs.get(f"heads/{branch}")
        current = self.flatten(self.get(head, "commit")["tree"]) if head else {}  # type: ignore[index]
        for path, data in files.items():
            current[path] = ("100644", self.put_blob(data))
        sha = self.put_commit(self.build(current), [head] if head else [],
                              {"name": "setup", "email": "setup@example.com"}, message)
        self.refs[f"heads/{branch}"] = sha
        return sha

    def files(self, branch: str | None = None) -> dict[str, bytes]:
        head = self.refs.get(f"heads/{branch or self.default_branch}")
        if head is None:
            return {}
        tree = self.get(head, "commit")["tree"]  # type: ignore[index]
        return {p: self.get(s, "blob") for p, (_, s) in self.flatten(tree).items()}  # type: ignore[misc]

    def log(self, branch: str | None = None) -> list[dict]:
        """Commits from the head of a branch back along first parents (newest first)."""
        out, sha = [], self.refs.get(f"heads/{branch or self.default_branch}")
        while sha:
            commit = self.get(sha, "commit")
            out.append({"sha": sha, **commit})  # type: ignore[dict-item]
            sha = commit["parents"][0] if commit["parents"] else None  # type: ignore[index]
        return out

    def resolve(self, ref: str) -> str:
        """A commit sha for a contents ?ref= (branch, tag, refs/..., heads/..., or a commit sha)."""
        ref = ref.removeprefix("refs/")
        for name in (ref, f"heads/{ref}", f"tags/{ref}"):
            if name in self.refs:
                return self.refs[name]
        if ref in self.objects and self.objects[ref][0] == "commit":
            return ref
        raise HttpError(404, f"No commit found for the ref {ref}")


class FakeGitHub:
    """The fake server. `token`: the only token accepted (None: any, or none); `read_only_tokens` may read only."""

    def __init__(self, token: str | None = "test-token", read_only_tokens: tuple[str, ...] = ()) -> None:
        self.token = token
        self.read_only = set(read_only_tokens)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization header)
        self.hooks: list = []  # callables(method, path) run (under the lock) before a request is handled
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None

    def create_repo(self, owner: str, name: str, files: dict[str, bytes] | None = None, *,
                    default_branch: str = "main", private: bool = True) -> Repo:
        with self.lock:
            repo = Repo(default_branch, private)
            self.repos[(owner, name)] = repo
            if files is not None:
                repo.commit_files(files)
            return repo

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    status, data = 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
                else:
                    try:
                        with fake.lock:
                            status, data = fake.handle(self.command, self.path, self.headers, body)
                    except HttpError as exc:
                        status, data = exc.status, {"message": exc.message, "documentation_url": DOCS}
                        if exc.errors:
                            data["errors"] = exc.errors
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name="github-fake").start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- routing --------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers, body: object) -> tuple[int, object]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        auth = headers.get("Authorization") or ""
        self.requests.append((method, parts.path, auth))
        for hook in list(self.hooks):
            hook(method, parts.path)
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", parts.path)
        if not match:
            raise HttpError(404, "Not Found")
        owner, name, rest = unquote(match[1]), unquote(match[2]), match[3] or ""
        token = re.sub(r"^(Bearer|token)\s+", "", auth, flags=re.I) if auth else ""
        if token and self.token is not None and token != self.token and token not in self.read_only:
            raise HttpError(401, "Bad credentials")
        repo = self.repos.get((owner, name))
        if repo is None or (repo.private and not token and self.token is not None):
            raise HttpError(404, "Not Found")
        if method != "GET" and (token in self.read_only or (not token and self.token is not None)):
            raise HttpError(403, "Resource not accessible by personal access token")
        body = body if isinstance(body, dict) else {}
        if rest == "" and method == "GET":
            return 200, {"full_name": f"{owner}/{name}", "name": name, "owner": {"login": owner},
                         "default_branch": repo.default_branch, "private": repo.private}
        if rest.startswith("/contents") and method == "GET":
            return self.contents(repo, unquote(rest[len("/contents"):]).strip("/"), query)
        if rest.startswith("/git/") and not repo.refs:
            raise HttpError(409, "Git Repository is empty.")
        if rest.startswith("/pulls") and method == "POST" and rest == "/pulls":
            return self.create_pull(repo, owner, name, body)
        route = re.fullmatch(r"/git/(ref|refs|commits|trees|blobs)(?:/(.*))?", rest)
        if not route:
            raise HttpError(404, "Not Found")
        kind, arg = route[1], unquote(route[2] or "")
        if kind == "ref" and method == "GET":
            if arg not in repo.refs:
                raise HttpError(404, "Not Found")
            return 200, {"ref": f"refs/{arg}", "object": {"sha": repo.refs[arg], "type": "commit"}}
        if kind == "refs" and method == "POST" and not arg:
            return self.create_ref(repo, body)
        if kind == "refs" and method == "PATCH" and arg:
            return self.update_ref(repo, arg.removeprefix("refs/"), body)
        if kind == "commits" and method == "GET" and arg:
            return 200, self.commit_json(repo, arg)
        if kind == "commits" and method == "POST" and not arg:
            return self.create_commit(repo, body)
        if kind == "trees" and method == "GET" and arg:
            return self.get_tree(repo, arg, query.get("recursive", [""])[0] not in ("", "0", "false"))
        if kind == "trees" and method == "POST" and not arg:
            return self.create_tree(repo, body)
        if kind == "blobs" and method == "GET" and arg:
            data = repo.get(arg, "blob")
            return 200, {"sha": arg, "size": len(data), "content": _b64(data), "encoding": "base64"}  # type: ignore
        if kind == "blobs" and method == "POST" and not arg:
            return self.create_blob(repo, body)
        raise HttpError(404, "Not Found")

    # -- endpoints --------------------------------------------------------------------------------------------
    def contents(self, repo: Repo, path: str, query: dict) -> tuple[int, object]:
        if not repo.refs:
            raise HttpError(404, "This repository is empty.")
        commit = repo.resolve(query.get("ref", [f"heads/{repo.default_branch}"])[0])
        files = repo.flatten(repo.get(commit, "commit")["tree"])  # type: ignore[index]
        if path in files:
            mode, sha = files[path]
            data: bytes = repo.get(sha, "blob")  # type: ignore[assignment]
            large = len(data) > LARGE
            return 200, {"type": "file", "name": path.rsplit("/", 1)[-1], "path": path, "sha": sha,
                         "size": len(data), "encoding": "none" if large else "base64",
                         "content": "" if large else _b64(data)}
        prefix = path + "/" if path else ""
        entries: dict[str, dict] = {}
        for file, (_, sha) in files.items():
            if file.startswith(prefix):
                head, _, rest = file[len(prefix):].partition("/")
                full = prefix + head
                entries.setdefault(head, {"type": "dir" if rest else "file", "name": head, "path": full,
                                          "sha": "" if rest else sha, "size": 0 if rest else
                                          len(repo.get(sha, "blob"))})  # type: ignore[arg-type]
        if not entries:
            raise HttpError(404, "Not Found")
        return 200, [entries[k] for k in sorted(entries)]

    def create_ref(self, repo: Repo, body: dict) -> tuple[int, object]:
        ref, sha = str(body.get("ref", "")), str(body.get("sha", ""))
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise HttpError(422, "Reference name is invalid")
        if sha not in repo.objects or repo.objects[sha][0] != "commit":
            raise HttpError(422, "Object does not exist")
        if ref[5:] in repo.refs:
            raise HttpError(422, "Reference already exists")
        repo.refs[ref[5:]] = sha
        return 201, {"ref": ref, "object": {"sha": sha, "type": "commit"}}

    def update_ref(self, repo: Repo, ref: str, body: dict) -> tuple[int, object]:
        sha = str(body.get("sha", ""))
        if ref not in repo.refs:
            raise HttpError(422, "Reference does not exist")
        if sha not in repo.objects or repo.objects[sha][0] != "commit":
            raise HttpError(422, "Object does not exist")
        if not body.get("force") and not repo.descends(sha, repo.refs[ref]):
            raise HttpError(422, "Update is not a fast forward")
        repo.refs[ref] = sha
        return 200, {"ref": f"refs/{ref}", "object": {"sha": sha, "type": "commit"}}

    def commit_json(self, repo: Repo, sha: str) -> dict:
        commit = repo.get(sha, "commit")
        return {"sha": sha, "tree": {"sha": commit["tree"]}, "message": commit["message"],  # type: ignore[index]
                "author": commit["author"], "committer": commit["author"],  # type: ignore[index]
                "parents": [{"sha": p} for p in commit["parents"]]}  # type: ignore[index]

    def create_commit(self, repo: Repo, body: dict) -> tuple[int, object]:
        tree, parents = str(body.get("tree", "")), body.get("parents") or []
        if not body.get("message"):
            raise HttpError(422, "Invalid request.", [{"message": "message wasn't supplied"}])
        if repo.objects.get(tree, ("",))[0] != "tree":
            raise HttpError(422, "Tree SHA does not exist")
        if any(repo.objects.get(p, ("",))[0] != "commit" for p in parents):
            raise HttpError(422, "Parent SHA does not exist or is not a commit object")
        author = body.get("author") or {"name": "fake", "email": "fake@example.com"}
        sha = repo.put_commit(tree, list(parents), author, str(body["message"]))
        return 201, self.commit_json(repo, sha)

    def get_tree(self, repo: Repo, sha: str, recursive: bool) -> tuple[int, object]:
        if sha in repo.objects and repo.objects[sha][0] == "commit":
            sha = repo.objects[sha][1]["tree"]  # type: ignore[index]
        elif sha not in repo.objects:
            try:
                sha = repo.get(repo.resolve(sha), "commit")["tree"]  # type: ignore[index]
            except HttpError:
                raise HttpError(404, "Not Found") from None

        def listing(tree_sha: str, prefix: str) -> list[dict]:
            out = []
            for name, (mode, kind, child) in repo.get(tree_sha, "tree").items():  # type: ignore[union-attr]
                entry = {"path": prefix + name, "mode": mode, "type": kind, "sha": child}
                if kind == "blob":
                    entry["size"] = len(repo.get(child, "blob"))  # type: ignore[arg-type]
                out.append(entry)
                if kind == "tree" and recursive:
                    out.extend(listing(child, prefix + name + "/"))
            return out

        return 200, {"sha": sha, "tree": listing(sha, ""), "truncated": False}

    def create_tree(self, repo: Repo, body: dict) -> tuple[int, object]:
        base = body.get("base_tree")
        files = repo.flatten(base) if base else {}
        if base and repo.objects.get(base, ("",))[0] != "tree":
            raise HttpError(422, "base_tree is not a valid tree oid")
        for entry in body.get("tree") or []:
            path, mode = str(entry.get("path", "")).strip("/"), str(entry.get("mode", "100644"))
            if entry.get("type", "blob") != "blob" or mode not in ("100644", "100755"):
                raise HttpError(422, "Invalid tree info (the fake supports file blobs only)")
            if "content" in entry:
                files[path] = (mode, repo.put_blob(str(entry["content"]).encode()))
            elif entry.get("sha") is None:
                if path not in files:
                    raise HttpError(422, f"GitRPC::BadObjectState: {path} is not in the tree")
                del files[path]
            else:
                if repo.objects.get(entry["sha"], ("",))[0] != "blob":
                    raise HttpError(422, "Invalid tree info", [{"message": f"{entry['sha']} is not a blob"}])
                files[path] = (mode, entry["sha"])
        sha = repo.build(files)
        return 201, self.get_tree(repo, sha, recursive=False)[1]

    def create_blob(self, repo: Repo, body: dict) -> tuple[int, object]:
        content, encoding = body.get("content"), body.get("encoding", "utf-8")
        if not isinstance(content, str):
            raise HttpError(422, "Invalid request.", [{"message": "content wasn't supplied"}])
        if encoding == "base64":
            data = base64.b64decode(content)
        elif encoding == "utf-8":
            data = content.encode()
        else:
            raise HttpError(422, f"encoding {encoding} is not supported")
        sha = repo.put_blob(data)
        return 201, {"sha": sha, "url": f"/git/blobs/{sha}"}

    def create_pull(self, repo: Repo, owner: str, name: str, body: dict) -> tuple[int, object]:
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        branch = head.split(":", 1)[-1]
        if not body.get("title"):
            raise HttpError(422, "Validation Failed", [{"resource": "PullRequest", "field": "title",
                                                        "code": "missing_field"}])
        if f"heads/{branch}" not in repo.refs or f"heads/{base}" not in repo.refs:
            field = "head" if f"heads/{branch}" not in repo.refs else "base"
            raise HttpError(422, "Validation Failed", [{"resource": "PullRequest", "field": field,
                                                        "code": "invalid"}])
        if any(p["head"]["ref"] == branch and p["base"]["ref"] == base and p["state"] == "open"
               for p in repo.pulls):
            raise HttpError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                        "message": f"A pull request already exists for {head}."}])
        if repo.refs[f"heads/{branch}"] == repo.refs[f"heads/{base}"]:
            raise HttpError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                        "message": f"No commits between {base} and {branch}"}])
        number = len(repo.pulls) + 1
        pull = {"number": number, "state": "open", "title": body["title"], "body": body.get("body"),
                "head": {"ref": branch, "label": head}, "base": {"ref": base},
                "maintainer_can_modify": bool(body.get("maintainer_can_modify")),
                "html_url": f"https://github.com/{owner}/{name}/pull/{number}"}
        repo.pulls.append(pull)
        return 201, pull

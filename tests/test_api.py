"""The in-app API, including the README's in-app example run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core import api
from core.errors import ProviderError, UsageError

README = Path(__file__).parent.parent / "README.md"


def readme_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- in-app example.*?-->\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its in-app example"
    return match.group(1)


def test_readme_in_app_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    jobs = ["-driver", "sqlite", "-sqlite-path", "jobs.db"]
    for i in range(3):
        api.pushx(json.dumps({"id": i, "name": f"job {i}"}), jobs)
    exec(compile(readme_example(), "README.md", "exec"), {})
    assert api.procx(jobs) is None
    results = [json.loads(w.payload) for w in _drain([*jobs, "-sqlite-queue", "results"])]
    assert sorted(r["id"] for r in results) == [0, 1, 2]
    assert all("processedBy" in r["metadata"] for r in results)


def test_unfinished_work_in_a_stream_is_failed_back(tmp_path: Path) -> None:
    args = ["-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db")]
    api.pushx(b"x", args)
    for work in api.consume(args):
        assert work.payload == b"x"
        break  # the app stopped without clearing: the item must come back
    assert api.procx(args) == b"x"


def test_clear_twice_is_refused(tmp_path: Path) -> None:
    args = ["-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db")]
    api.pushx(b"x", args)
    with api.work(args) as work:
        work.clear()
        with pytest.raises(RuntimeError, match="already cleared"):
            work.fail()


def test_producer_push_many(tmp_path: Path) -> None:
    args = ["-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db")]
    with api.Producer(args) as producer:
        ids = producer.push_many([b"a", "b", b"c"])
    assert len(set(ids)) == 3
    assert [w.payload for w in _drain(args)] == [b"a", b"b", b"c"]


def _drain(args: list[str]) -> list:
    out = []
    for work in api.consume(args):
        out.append(work)
        work.clear()
    return out


def test_errors_are_exceptions_not_exit_codes(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="did you mean 'sqlite'"):
        api.procx(["-driver", "sqlit"])
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ProviderError):
        api.pushx(b"x", ["-driver", "sqlite", "-sqlite-path", str(tmp_path / "file" / "q.db")])


def test_variables_apply_below_arguments(tmp_path: Path) -> None:
    env = {"PUSHX_DRIVER": "sqlite", "PUSHX_SQLITE_PATH": str(tmp_path / "a.db")}
    api.pushx(b"x", ["-sqlite-path", str(tmp_path / "b.db")], environ=env)
    assert api.procx(["-driver", "sqlite", "-sqlite-path", str(tmp_path / "b.db")]) == b"x"

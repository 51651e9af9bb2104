"""local: the payload comes from PROCX_PAYLOAD; pushx prints it. Round trips where they are meaningful."""

from __future__ import annotations

import pytest

from tests.conformance import PAYLOADS
from tests.support import clean_env, run

# A variable cannot hold NUL bytes, and an empty variable means "no work".
CARRIABLE = {k: v for k, v in PAYLOADS.items() if v and b"\x00" not in v}


@pytest.mark.parametrize("name", list(CARRIABLE))
def test_round_trip_through_the_variable_and_standard_output(name: str) -> None:
    payload = CARRIABLE[name]
    pushed = run("pushx", "-driver", "local", input=payload)
    assert (pushed.returncode, pushed.stdout) == (0, payload)
    env = {**clean_env(), "PROCX_PAYLOAD": payload.decode(errors="surrogateescape")}
    taken = run("procx", "-driver", "local", env=env)
    assert (taken.returncode, taken.stdout) == (0, payload)


def test_unset_is_no_work() -> None:
    done = run("procx", "-driver", "local", "false")
    assert (done.returncode, done.stdout) == (0, b"")


def test_tee_prints_twice() -> None:
    done = run("pushx", "-driver", "local", "-out=-", "-in", "ab")
    assert done.stdout == b"abab"


def test_payload_from_the_env_file(tmp_path) -> None:
    profile = tmp_path / "p.env"
    profile.write_text("PROCX_PAYLOAD=from-file\n")
    done = run("procx", "-driver", "local", "-env-file", str(profile))
    assert done.stdout == b"from-file"

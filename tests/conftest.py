"""Fixtures shared by every test."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests must not see settings exported in the developer's shell."""
    for key in list(os.environ):
        if key.startswith(("PROCX_", "PUSHX_")):
            monkeypatch.delenv(key)

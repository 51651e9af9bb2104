"""github: procx takes a file of a repository (then mv/rm by commit); pushx commits one file."""

from __future__ import annotations

from core.options import BOTH, PROCX, PUSHX, DriverSpec, Option
from drivers.common import selector_options


def _after(phase: str, when: str) -> list[Option]:
    return [
        Option(f"github-{phase}-op", sides=PROCX,
               help=f"what to do with the file {when}, by commit: mv or rm (empty: leave it)"),
        Option(f"github-{phase}-location", sides=PROCX, env={PROCX: f"PROCX_GITHUB_{phase.upper()}_OP_LOCATION"},
               help=f"path to move the file to {when}; {{{{key}}}} is the file's base name"),
    ]


SPEC = DriverSpec(
    "github",
    "a GitHub repository: each file is one unit of work",
    [
        Option("github-owner", help="owner (user or organisation) of the repository"),
        Option("github-repo", help="name of the repository"),
        Option("github-token", secret=True, help="OAuth/personal access token (empty: unauthenticated)"),
        *selector_options("github", "file", key_sides=BOTH),
        Option("github-ref", help="git ref to read from and commit on, e.g. heads/main (empty: the base branch)"),
        Option("github-base-branch", help="branch to commit on, and the base of a pull request"),
        Option("github-branch", help="create this branch from the base and commit there (empty: commit on the base)"),
        Option("github-open-pr", "bool", help="open a pull request after committing (branch: a random name if unset)"),
        Option("github-commit-name", required=PUSHX, help="commit author name (needed for any commit)"),
        Option("github-commit-email", required=PUSHX, help="commit author e-mail (needed for any commit)"),
        Option("github-commit-message", required=PUSHX, help="commit message (needed for any commit)"),
        Option("github-pr-title", help="pull request title (empty: the commit message)"),
        Option("github-pr-body", help="pull request description"),
        *_after("clear", "after success"),
        *_after("fail", "after failure"),
    ],
)

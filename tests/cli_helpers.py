"""The ``rerankit`` console entry point run in-process, for the CLI tests (no tests here)."""

from __future__ import annotations

import pytest

from rerankit.cli import main


def run_cli(argv: list[str]) -> int:
    """Run ``rerankit ARGV`` in-process; its exit code (a ``SystemExit`` message counts as 1)."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run_cli_captured(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``run_cli`` and what it printed: (exit code, stdout, stderr)."""
    code = run_cli(argv)
    out, err = capsys.readouterr()
    return code, out, err

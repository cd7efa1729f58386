"""The ``rerankit`` command: thin commands over the library, one module per command.

Every ``RerankitError`` becomes a one-line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from ..errors import RerankitError
from .app import app

# Each module registers its commands on ``app`` when imported.
from . import (  # noqa: E402,F401
    ask_cmd, bench_cmd, demo_cmd, eval_cmd, index_cmd, rerank_run_cmd, search_cmd, serve_cmd, train_cmd,
)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    try:
        app(args=argv, prog_name="rerankit", standalone_mode=True)
    except RerankitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)

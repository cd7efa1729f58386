"""Checks of the numbers a caller passes in: one place, one wording, ``InvalidInputError`` on failure."""

from __future__ import annotations

from numbers import Integral
from typing import Any

from .errors import InvalidInputError

__all__ = ["positive_int", "validate_top_k"]


def positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) >= ``minimum``; else ``InvalidInputError``
    naming ``name`` (an argument, option or field)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidInputError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def validate_top_k(top_k: Any) -> int | None:
    """``None`` (keep every result) or a positive int."""
    return None if top_k is None else positive_int(top_k, "top_k")

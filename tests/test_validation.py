"""rerankit.validation: the one positive-integer check, and that no copy of it is left in the package."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rerankit.errors import InvalidInputError
from rerankit.validation import positive_int, validate_top_k

SRC = Path(__file__).resolve().parents[1] / "src" / "rerankit"
# what each copy of the check looked like: an isinstance test against bool and int, then "< 1"
HAND_WRITTEN = re.compile(r"isinstance\((\w+), bool\) or not isinstance\(\1, \(?int\b[^)]*\)? or \1 < [01]\b")


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1)])
def test_positive_ints_pass_as_python_ints(value):
    out = positive_int(value, "k")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, "3", None, np.float32(2)])
def test_anything_else_names_the_argument(value):
    with pytest.raises(InvalidInputError, match=r"^depth must be a positive integer, got "):
        positive_int(value, "depth")


def test_a_minimum_other_than_one():
    assert positive_int(0, "--overlap-words", minimum=0) == 0
    with pytest.raises(InvalidInputError, match="--overlap-words must be an integer >= 0, got -1"):
        positive_int(-1, "--overlap-words", minimum=0)


def test_top_k_may_be_none():
    assert validate_top_k(None) is None and validate_top_k(5) == 5
    with pytest.raises(InvalidInputError, match="top_k"):
        validate_top_k(0)


def test_no_hand_written_copy_is_left():
    copies = [f"{p.relative_to(SRC)}:{n}" for p in SRC.rglob("*.py") if p.name != "validation.py"
              for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if HAND_WRITTEN.search(line)]
    assert copies == []
    assert HAND_WRITTEN.search("if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:")

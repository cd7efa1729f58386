"""One place for errors: every exception class of the package is defined in ``rerankit/errors.py``, derives
from ``RerankitError`` and is listed in its ``__all__``."""

from __future__ import annotations

import ast
from pathlib import Path

import rerankit.errors as errors
from rerankit.errors import RerankitError

PACKAGE = Path(errors.__file__).resolve().parent


def _exception_classes(tree: ast.AST) -> list[str]:
    """Classes whose base is named ``Exception`` or ends in ``Error`` (a pydantic model named ``TeiError``
    derives from ``BaseModel`` and is not one)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
            if any(b in ("Exception", "BaseException") or b.endswith(("Error", "Exception")) for b in bases):
                found.append(node.name)
    return found


def test_no_module_but_errors_py_defines_an_exception():
    elsewhere = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        classes = _exception_classes(ast.parse(path.read_text(), str(path)))
        if classes:
            elsewhere[str(path.relative_to(PACKAGE))] = classes
    assert elsewhere == {}


def test_every_error_is_a_rerankit_error_and_exported():
    defined = _exception_classes(ast.parse(Path(errors.__file__).read_text()))
    assert "ServiceError" in defined and "OverloadedError" in defined
    for name in defined:
        assert issubclass(getattr(errors, name), RerankitError), name
    assert sorted(defined) == sorted(errors.__all__)

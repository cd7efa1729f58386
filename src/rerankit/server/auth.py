"""Optional API keys: Bearer tokens from ``--api-key``, ``$RERANKIT_API_KEYS`` or a keys file."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import InvalidInputError, ServiceError
from ..settings import settings
from .errors import FORBIDDEN, UNAUTHORIZED

KEYS_ENV = "RERANKIT_API_KEYS"


def read_keys_file(path: str | Path) -> list[str]:
    """One key per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read API keys file {path}: {exc}") from exc
    keys = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise InvalidInputError(f"API keys file {path} holds no key")
    return keys


def collect_keys(keys: Iterable[str] = (), keys_file: str | Path | None = None,
                 environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The union of ``keys``, the file's keys and the comma-separated ``$RERANKIT_API_KEYS`` (in that order)."""
    found = [k.strip() for k in keys if k and k.strip()]
    if keys_file:
        found += read_keys_file(keys_file)
    listed = settings().api_keys if environ is None else environ.get(KEYS_ENV, "")
    found += [k.strip() for k in listed.split(",") if k.strip()]
    return tuple(dict.fromkeys(found))


class KeyChecker:
    """Checks ``Authorization: Bearer KEY``; with no keys configured every request (and any token) passes."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [k.encode("utf-8") for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> None:
        """Raise ``ServiceError`` (401 without a Bearer token, 403 with a wrong one) unless the key is known."""
        if not self._keys:
            return
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ServiceError(UNAUTHORIZED, "missing API key: send 'Authorization: Bearer <key>'",
                           {"WWW-Authenticate": "Bearer"})
        given = token.encode("latin-1", "replace")  # the header's own bytes (ASGI headers are decoded as latin-1)
        if not any(hmac.compare_digest(given, key) for key in self._keys):
            raise ServiceError(FORBIDDEN, "invalid API key")

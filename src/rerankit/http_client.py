"""The one HTTP client of rerankit's calls to other services (hosted rerank APIs, a remote rerank server,
OpenAI-compatible chat and embeddings): a shared ``httpx.Client`` per owner, JSON POSTs whose every
failure is a ``ProviderError``, and retries with exponential backoff on 429, 5xx, timeouts and lost
connections, honouring ``Retry-After``."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .errors import InvalidInputError, ProviderError, ProviderTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


def is_retryable_status(status: int) -> bool:
    """429 and friends, and every 5xx."""
    return status in RETRYABLE_STATUS or 500 <= status <= 599


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``; None if absent."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    millis = lower.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first try; the n-th waits ``base_delay * 2**n`` (plus up to
    ``jitter`` of it), or ``Retry-After`` when the server sends more. A wait above ``max_delay`` is not
    made: the error is raised at once (so a fallback can answer). ``sleep`` is injectable for tests."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.1
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {self.max_retries!r}")
        if self.base_delay < 0 or self.max_delay < 0 or self.jitter < 0:
            raise ValueError("base_delay, max_delay and jitter must be >= 0")

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based), without ``Retry-After``."""
        delay = self.base_delay * (2**retry)
        return delay + random.uniform(0.0, delay * self.jitter) if self.jitter else delay


def retry_policy(retry: RetryPolicy | None, max_retries: int | None) -> RetryPolicy:
    """``retry`` (default ``RetryPolicy()``), with its retry count set to ``max_retries`` when that is given."""
    policy = retry or RetryPolicy()
    return policy if max_retries is None else replace(policy, max_retries=max_retries)


def with_retries(call: Callable[[], T], policy: RetryPolicy, what: str = "request") -> T:
    """Run ``call``; on a retryable ``ProviderError`` wait and try again, up to ``policy.max_retries`` times."""
    retry = 0
    while True:
        try:
            return call()
        except ProviderError as exc:
            if not exc.retryable or retry >= policy.max_retries:
                if exc.retryable and retry:
                    exc.args = (f"{exc.args[0]} (gave up after {retry + 1} attempts)",)
                raise
            delay = policy.backoff(retry)
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            if delay > policy.max_delay:
                note = f"a retry would wait {delay:.1f} s, above max_delay {policy.max_delay:g} s"
                exc.args = (f"{exc.args[0]} ({note})",)
                raise
            log.warning("%s %s failed (%s); retry %d/%d in %.2f s", exc.provider, what, exc.detail,
                        retry + 1, policy.max_retries, delay)
            policy.sleep(delay)
            retry += 1


def checked_timeout(timeout: float) -> float:
    """``timeout`` in seconds as a float; ``InvalidInputError`` unless it is > 0."""
    if not timeout or timeout <= 0:
        raise InvalidInputError(f"timeout must be > 0 seconds, got {timeout!r}")
    return float(timeout)


def bearer_headers(api_key: str | None) -> dict[str, str]:
    """``Authorization: Bearer KEY``, or no headers without a key."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def error_text(response: Any, limit: int = 300) -> str:
    """The message of an error answer (``message``/``error``/``detail`` of a JSON body, else the text)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            if body.get(key):
                value = body[key]
                return str(value.get("message", value) if isinstance(value, Mapping) else value)[:limit]
    return " ".join(response.text.split())[:limit] or response.reason_phrase


def post_json(client: Any, provider: str, url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
    """POST ``body`` as JSON and return the decoded answer; every failure becomes a ``ProviderError``."""
    import httpx

    try:
        response = client.post(url, json=body, headers=dict(headers))
    except httpx.TimeoutException as exc:
        raise ProviderTimeoutError(provider, f"no answer from {url} within the timeout ({type(exc).__name__})",
                                   retryable=True) from exc
    except httpx.TransportError as exc:
        raise ProviderError(provider, f"cannot reach {url}: {type(exc).__name__}: {exc}", retryable=True) from exc
    if not 200 <= response.status_code < 300:
        status = response.status_code
        raise ProviderError(provider, f"{url}: {error_text(response)}", status,
                            retryable=is_retryable_status(status), retry_after=parse_retry_after(response.headers))
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(provider, f"{url} answered {response.status_code} with a body that is not JSON") from exc


class HttpConnection:
    """What each caller of another service holds: its checked ``timeout``, its ``retry`` policy (``retry``,
    with ``max_retries`` retries when given) and one ``httpx.Client``, built on first use and shared by the
    owner's threads (keeps connections alive)."""

    def __init__(self, timeout: float, retry: RetryPolicy | None = None, max_retries: int | None = None) -> None:
        self.timeout = checked_timeout(timeout)
        self.retry = retry_policy(retry, max_retries)
        self._client: Any = None
        self._lock = threading.Lock()

    def post_json(self, provider: str, url: str, body: Mapping[str, Any], api_key: str | None = None) -> Any:
        """One ``post_json`` on this connection, with ``Authorization: Bearer api_key`` when there is a key."""
        return post_json(self.client(), provider, url, body, bearer_headers(api_key))

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(timeout=self.timeout)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None

"""Retries of provider calls (the errors are in ``rerankit.errors``): exponential backoff on 429, 5xx and timeouts, honouring ``Retry-After``."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ..errors import ProviderError

log = logging.getLogger("rerankit.hosted")

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

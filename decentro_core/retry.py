"""The retry policy: which failures are retried, how often, how long apart, and with which
reference id.

Two modes, chosen per operation:

``READ`` (KYC look-ups, payment status)
    Repeating the request cannot move money, so connection failures, timeouts, 429, every
    5xx and a garbled answer are retried. Decentro rejects a reused ``reference_id`` (and may count one as used
    even when it rejected the request), so each attempt gets a **fresh** reference id.

``WRITE`` (payments, SMS, e-mail)
    Repeating a request that Decentro accepted would pay or send twice. Only failures that
    prove the request was not processed are retried: a connection that never carried the
    request, 429 and 503. The retry keeps the **same** reference id, so if Decentro did act
    on the first attempt it refuses the second as a duplicate instead of acting twice.
    A read timeout, a connection lost after sending, 500, 502, 504 or a garbled answer is never
    retried: the outcome is unknown, and the caller gets ``PENDING`` with the reference id, to
    reconcile by status or callback. An operation whose answer is ``PENDING`` in any case (a
    collect request) waits for these retries on background threads, not the caller's
    (:meth:`~decentro_core.runner.OperationRunner.run`).

Backoff is exponential (``backoff_base`` doubling) plus up to 25% jitter from an injectable
random source, never longer than ``backoff_max``; a 429's ``Retry-After`` is honoured up to
``backoff_max``.

Every call has one :class:`Deadline` (``DECENTRO_DEADLINE``) covering its attempts, the
backoff between them and any wait before them. No retry starts unless the backoff plus
:data:`MIN_ATTEMPT_SECONDS` still fits; each attempt's read timeout is cut to what is left.
"""

from __future__ import annotations

import enum
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from .errors import (
    GatewayConnectionError,
    GatewayTimeout,
    RateLimited,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from .envelope import provider_code_of
from .ports import GatewayResponse

__all__ = ["MIN_ATTEMPT_SECONDS", "Deadline", "RetryMode", "RetryPolicy", "doubling", "raise_for_transient_status",
           "run_with_retry"]

T = TypeVar("T")

MIN_ATTEMPT_SECONDS = 1.0
"""An attempt with less time than this left is not started: it could only time out."""


@dataclass(frozen=True)
class Deadline:
    """When one call must be over, on a monotonic clock (injectable for tests)."""

    expires_at: float
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def after(cls, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(monotonic() + seconds, monotonic)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self.monotonic())


class RetryMode(enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.25

    def is_retryable(self, mode: RetryMode, exc: BaseException) -> bool:
        if isinstance(exc, (GatewayConnectionError, RateLimited)):
            return True
        if isinstance(exc, UpstreamUnavailable):
            return mode is RetryMode.READ or exc.upstream_status == 503
        # A garbled transport (retryable) is worth another read; a well-formed answer that lacks
        # documented fields will look the same next time.
        garbled = isinstance(exc, UpstreamProtocolError) and exc.retryable
        return mode is RetryMode.READ and (isinstance(exc, GatewayTimeout) or garbled)

    def delay(self, attempt_number: int, exc: BaseException | None, rng: random.Random) -> float:
        backoff = doubling(self.backoff_base, attempt_number, cap=self.backoff_max)
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        if retry_after is not None and retry_after > backoff:
            backoff = min(self.backoff_max, float(retry_after))
        # Jitter scales with the wait (a fraction of it), and the total never passes the cap.
        return float(min(self.backoff_max, backoff * (1 + rng.uniform(0, self.jitter))))

    def fits(self, delay: float, deadline: Deadline | None) -> bool:
        """Whether an attempt after waiting ``delay`` still has :data:`MIN_ATTEMPT_SECONDS`."""
        return deadline is None or deadline.remaining() >= delay + MIN_ATTEMPT_SECONDS


def doubling(base: float, attempt_number: int, *, cap: float) -> float:
    """The wait before retry ``attempt_number`` (1, 2, ...): ``base`` doubling, never past ``cap``."""
    return float(min(cap, base * 2 ** (attempt_number - 1)))


def raise_for_transient_status(response: GatewayResponse, *, request_id: str) -> GatewayResponse:
    """Turn a 429 or 5xx answer into the exception the retry policy reasons about."""
    status = response.status_code
    if status == 429:
        raise RateLimited(
            "Decentro is rate limiting this client",
            request_id=request_id,
            provider_code=_provider_code(response),
            upstream_status=status,
            retry_after=_retry_after(response),
        )
    if status >= 500:
        raise UpstreamUnavailable(
            f"Decentro answered HTTP {status}",
            request_id=request_id,
            provider_code=_provider_code(response),
            upstream_status=status,
        )
    return response


def run_with_retry(
    attempt: Callable[[int], T],
    *,
    mode: RetryMode,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random | None = None,
    deadline: Deadline | None = None,
    first: int = 1,
) -> T:
    """Call ``attempt(n)`` (n = ``first``, ``first`` + 1, ...) until it returns or fails for good.

    The last exception is re-raised unchanged when attempts run out, when it is not
    retryable, or when the backoff before the next attempt would not leave
    :data:`MIN_ATTEMPT_SECONDS` before ``deadline``. ``first`` > 1 continues a call whose
    ``first - 1`` attempts failed elsewhere (and whose backoff before this one was waited):
    the attempts left and the backoffs between them go on from there.
    """
    source = rng or random.Random()
    done = first - 1

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return policy.delay(done + state.attempt_number, exc, source)

    class OutOfTime(stop_base):
        def __call__(self, state: RetryCallState) -> bool:
            # tenacity computes the wait (upcoming_sleep) before it asks whether to stop.
            return not policy.fits(state.upcoming_sleep, deadline)

    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.max_retries + 1 - done)) | OutOfTime(),
        wait=wait,
        retry=retry_if_exception(lambda exc: policy.is_retryable(mode, exc)),
        sleep=sleep,
        reraise=True,
    )
    numbers = itertools.count(first)
    return retrying(lambda: attempt(next(numbers)))


def _provider_code(response: GatewayResponse) -> str | None:
    return provider_code_of(response.body)  # the v2 and the v3 spellings


def _retry_after(response: GatewayResponse) -> float | None:
    for name, value in response.headers.items():
        if name.lower() in {"retry-after", "ratelimit-reset"}:
            try:
                return float(value)
            except ValueError:
                return None
    return None



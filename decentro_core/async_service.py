"""The guide's awaitable face: :class:`DecentroService`.

Each method runs the blocking implementation on the service's own thread pool, so an event
loop is never blocked by network or database I/O and both faces behave identically. The pool
is the service's own (``DECENTRO_ASYNC_WORKERS`` threads), not asyncio's default executor,
whose few threads would cap how many calls can wait on Decentro at once.

Every awaitable method is made from its blocking twin by :func:`_awaitable`, which keeps the
blocking signature (``ParamSpec``): a type checker catches a wrong keyword on
``await decentro.verify_pan(...)`` exactly as on the blocking call.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

from .bulkhead import bulkhead_limit
from .events import EventDispatcher, Handler
from .service import BlockingDecentroService
from .settings import Settings

__all__ = ["DecentroService"]

P = ParamSpec("P")
R = TypeVar("R")


def _awaitable(
    method: Callable[Concatenate[BlockingDecentroService, P], R],
) -> Callable[Concatenate[DecentroService, P], Coroutine[Any, Any, R]]:
    """The awaitable twin of a blocking method, with the same parameters and docstring."""

    async def call(self: DecentroService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        # In the caller's context (as asyncio.to_thread does), so a tracing span current in the
        # request handler is the parent of the call's span.
        bound = functools.partial(contextvars.copy_context().run, method, self.blocking, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, bound)

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class DecentroService:
    """``decentro = DecentroService()``; ``result = await decentro.verify_pan(pan, name)``.

    Takes the blocking service's arguments (settings, ports), or an existing one as
    ``blocking=``. ``async with DecentroService() as decentro:`` closes it on the way out.
    """

    def __init__(self, settings: Settings | None = None, *, blocking: BlockingDecentroService | None = None,
                 **options: Any) -> None:
        self.blocking = blocking or BlockingDecentroService(settings, **options)
        self.settings = self.blocking.settings
        if self.settings.bulkhead_max == 0 and self.blocking.bulkhead is not None:
            # The pool bounds the calls waiting at once already; the bulkhead refuses none of them.
            self.blocking.bulkhead.limit = bulkhead_limit(0, automatic=self.settings.async_workers)
        self._executor = ThreadPoolExecutor(max_workers=self.settings.async_workers,
                                            thread_name_prefix="decentro")

    verify_pan = _awaitable(BlockingDecentroService.verify_pan)
    verify_bank = _awaitable(BlockingDecentroService.verify_bank)
    fetch_ckyc = _awaitable(BlockingDecentroService.fetch_ckyc)
    verify_aadhaar_xml = _awaitable(BlockingDecentroService.verify_aadhaar_xml)
    start_aadhaar_otp = _awaitable(BlockingDecentroService.start_aadhaar_otp)
    verify_aadhaar_otp = _awaitable(BlockingDecentroService.verify_aadhaar_otp)
    initiate_payment = _awaitable(BlockingDecentroService.initiate_payment)
    get_payment_status = _awaitable(BlockingDecentroService.get_payment_status)
    validate_upi_handle = _awaitable(BlockingDecentroService.validate_upi_handle)
    send_sms = _awaitable(BlockingDecentroService.send_sms)
    send_email = _awaitable(BlockingDecentroService.send_email)
    cache_kyc_result = _awaitable(BlockingDecentroService.cache_kyc_result)
    get_cached_kyc_result = _awaitable(BlockingDecentroService.get_cached_kyc_result)
    receive_callback = _awaitable(BlockingDecentroService.receive_callback)
    reconcile_payments = _awaitable(BlockingDecentroService.reconcile_payments)
    wait_for_retries = _awaitable(BlockingDecentroService.wait_for_retries)

    def on(self, event_type: str, handler: Handler | None = None, *, name: str | None = None) -> Any:
        """Register an outcome-event handler (a plain function; it runs on the dispatcher's
        thread): see :meth:`BlockingDecentroService.on`."""
        return self.blocking.on(event_type, handler, name=name)

    @property
    def events(self) -> EventDispatcher:
        """The outcome-event dispatcher (see :mod:`decentro_core.events`)."""
        return self.blocking.events

    def validate_webhook(self, payload: Any, signature: str, secret: str) -> bool:
        """Pure computation, so not awaited: HMAC-SHA256 hex of the raw body, constant time."""
        return self.blocking.validate_webhook(payload, signature, secret)

    def close(self) -> None:
        """Stop the thread pool (waiting for calls in flight) and close the blocking service."""
        self._executor.shutdown(wait=True)
        self.blocking.close()

    async def __aenter__(self) -> DecentroService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

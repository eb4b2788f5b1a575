"""Rate limiting of the KYC and payment routes with flask-limiter, per client IP or per user.

The key (``DECENTRO_RATELIMIT_KEY``) is ``ip`` by default: ``request.remote_addr`` and nothing
else, since ``X-Forwarded-For`` is set by the client and would let anyone pick their own bucket
(behind a reverse proxy, wrap the app in ``werkzeug.middleware.proxy_fix.ProxyFix`` with the
exact number of proxies you run). ``user`` counts per signed-in user (the ``identity``
callable's id), so borrowers behind one mobile-carrier NAT address do not share a count and
one user does not get a fresh count per address; requests without a user share one anonymous
count (they are refused 401 anyway). ``user_or_ip`` counts per user, and per IP when nobody is
signed in.

When the limiter's storage (Redis) fails the limits still hold
(``DECENTRO_RATELIMIT_ON_STORAGE_ERROR``): ``memory`` (the default) counts in this process
(flask-limiter's in-memory fallback, which tries the storage again after 1, 2, 4 ... 32 s
and goes back to it once it answers); ``refuse`` answers the limited routes 503 with
``Retry-After`` until the storage answers again. Either way a Redis call gets one attempt of
``DECENTRO_REDIS_TIMEOUT`` seconds (redis-py's default retries ten times), and in ``refuse``
mode a failure pauses the storage for ``DECENTRO_REDIS_COOLDOWN`` seconds, so an unreachable
Redis costs a request a fraction of a second, not seconds.

``memory://`` storage counts per process: in live mode it is refused at start-up when several
processes serve (see :func:`serving_processes`), unless ``DECENTRO_RATELIMIT_ALLOW_MEMORY=true``.
See https://flask-limiter.readthedocs.io/en/stable/configuration.html (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``)
and https://docs.gunicorn.org/en/stable/settings.html#workers.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from limits.errors import StorageError as LimitsStorageError

from decentro_core.breaker import CircuitBreaker
from decentro_core.demo import warn_once
from decentro_core.errors import CircuitOpen, ConfigurationError, RateLimitUnavailable
from decentro_core.settings import Settings

from .config import FlaskOptions

__all__ = ["RateLimitUnavailable", "build_limiter", "check_limits", "client_ip", "rate_limit_unavailable",
           "serving_processes", "signed_in_user", "user_or_ip_key"]

_STORAGE = "ratelimit-storage"  # the breaker's one circuit
_BREAKER = "decentro-ratelimit-breaker"  # its place in app.extensions (refuse mode only)


def client_ip() -> str:
    """The ``ip`` key: the peer address as the WSGI server (or ProxyFix) saw it."""
    return request.remote_addr or "unknown"


def signed_in_user(identity: Callable[[], str | None] | None) -> str | None:
    """The signed-in user, asked of the host app once per request (routes and limiter share it)."""
    if "decentro_user" not in g:
        g.decentro_user = identity() if identity is not None else None
    user_id: str | None = g.decentro_user
    return user_id


def _key_func(choice: str, identity: Callable[[], str | None] | None) -> Callable[[], str]:
    if choice == "ip" or identity is None:  # no identity (demo mode): nobody is signed in
        return client_ip  # the bare address, as before: counts in a shared storage carry over

    def key() -> str:
        user_id = signed_in_user(identity)
        if user_id:  # keyed by its fingerprint: a user id may be an e-mail, never stored in clear
            return f"user:{current_app.extensions['decentro'].service.ports.vault.fingerprint(user_id)}"
        return "user:-" if choice == "user" else f"ip:{client_ip()}"

    return key


def user_or_ip_key(identity: Callable[[], str | None] | None) -> Callable[[], str]:
    """The ``user_or_ip`` key (the status reads' always)."""
    return _key_func("user_or_ip", identity)


def _never() -> bool:
    return True


_WORKERS = re.compile(r"^(?:-w|--workers)(?:=?(\d+))?$")


def _workers_in(args: Sequence[str]) -> int | None:
    """gunicorn's ``-w N`` / ``--workers N`` / ``--workers=N`` / ``-wN`` in an argument list."""
    found = None
    for i, arg in enumerate(args):
        match = _WORKERS.match(arg)
        if match is None:
            continue
        value = match.group(1) or (args[i + 1] if i + 1 < len(args) else "")
        if value.isdigit():
            found = int(value)
    return found


def serving_processes(environ: Mapping[str, str] | None = None, argv: Sequence[str] | None = None) -> int:
    """How many processes serve this app, as far as can be seen from inside one (1: one, or unknown).

    What counts: gunicorn's ``--workers`` in ``GUNICORN_CMD_ARGS`` or on the gunicorn command
    line (``sys.argv`` of the master and its workers, ``gunicorn`` or ``python -m gunicorn``),
    ``WEB_CONCURRENCY`` (gunicorn's default for ``workers``, also read by other servers), and
    uWSGI's ``uwsgi.numproc``. A worker count set only in a gunicorn config file is not seen.
    """
    environ = os.environ if environ is None else environ
    argv = sys.argv if argv is None else argv
    counts: list[int] = []
    concurrency = environ.get("WEB_CONCURRENCY", "").strip()
    if concurrency.isdigit():
        counts.append(int(concurrency))
    for args in (_split(environ.get("GUNICORN_CMD_ARGS", "")),
                 argv[1:] if argv and _is_gunicorn(argv[0]) else []):
        workers = _workers_in(args)
        if workers is not None:
            counts.append(workers)
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is not None:
        counts.append(int(getattr(uwsgi, "numproc", 1)))
    return max(counts, default=1)


def _is_gunicorn(program: str) -> bool:
    """``gunicorn ...`` or ``python -m gunicorn ...`` (whose ``argv[0]`` is ``gunicorn/__main__.py``)."""
    return os.path.basename(program).startswith("gunicorn") or program.endswith(
        os.path.join("gunicorn", "__main__.py"))


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _check_memory_storage(options: FlaskOptions, settings: Settings) -> None:
    if settings.use_mocks or options.ratelimit_allow_memory:
        warn_once(
            "in-memory-rate-limits",
            "Decentro rate limits use IN-MEMORY storage: each process counts on its own. "
            "Set DECENTRO_RATELIMIT_STORAGE_URI=redis://... when several processes serve."
        )
        return
    processes = serving_processes()
    if processes > 1:
        raise ConfigurationError(
            f"DECENTRO_RATELIMIT_STORAGE_URI=memory:// counts per process and {processes} processes serve: each "
            f"would allow the whole limit. Set DECENTRO_RATELIMIT_STORAGE_URI=redis://..., or "
            f"DECENTRO_RATELIMIT_ALLOW_MEMORY=true to accept it"
        )
    warn_once(
        "in-memory-rate-limits",
        "Decentro rate limits use IN-MEMORY storage: right for one process only. "
        "Set DECENTRO_RATELIMIT_STORAGE_URI=redis://... before serving from several."
    )


def _storage_options(uri: str, options: FlaskOptions, settings: Settings) -> dict[str, Any]:
    if not uri.startswith("redis"):
        return {}
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        # Redis keys start with our prefix too (not limits' "LIMITS"), so one prefix names them all.
        "key_prefix": options.ratelimit_key_prefix,
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "retry": Retry(NoBackoff(), 0),  # one attempt: redis-py's default retries ten times
        "wrap_exceptions": True,  # limits.errors.StorageError, whatever the driver raised
    }


def _refusing_key(key: Callable[[], str], breaker: CircuitBreaker, check: Callable[[], bool]) -> Callable[[], str]:
    """``key``, asked after the breaker: while the storage is paused the limit is not evaluated
    and nothing is sent to Redis (flask-limiter asks for the key before it touches the storage)."""

    def guarded() -> str:
        try:
            trial = breaker.admit(_STORAGE)
        except CircuitOpen:
            raise RateLimitUnavailable("The rate-limit storage is unreachable; try again shortly") from None
        if trial is not None:
            if not check():
                breaker.failed(_STORAGE)
                raise RateLimitUnavailable("The rate-limit storage is unreachable; try again shortly")
            breaker.succeeded(_STORAGE)
        return key()

    return guarded


def rate_limit_unavailable(exc: Exception) -> tuple[Response, int]:
    """503 with ``Retry-After`` for a limited route whose count cannot be kept (``refuse`` mode)."""
    from .errors import failure

    breaker: CircuitBreaker | None = current_app.extensions.get(_BREAKER)
    if isinstance(exc, LimitsStorageError) and breaker is not None:
        breaker.failed(_STORAGE)  # the next requests are refused without asking Redis
    response, status = failure(503, {"code": RateLimitUnavailable.code,
                                     "message": "The rate limit cannot be counted right now; try again shortly"})
    response.headers["Retry-After"] = str(max(1, int(breaker.cooldown if breaker is not None else 1)))
    return response, status


def check_limits(options: FlaskOptions, settings: Settings, identity: Callable[[], str | None] | None) -> None:
    """The limiter's settings, checked at ``init_app`` before anything is built."""
    if options.ratelimit_on_storage_error not in ("memory", "refuse"):
        raise ConfigurationError("DECENTRO_RATELIMIT_ON_STORAGE_ERROR must be memory or refuse")
    if options.ratelimit_key not in ("ip", "user", "user_or_ip"):
        raise ConfigurationError("DECENTRO_RATELIMIT_KEY must be ip, user or user_or_ip")
    if options.ratelimit_key != "ip" and identity is None and not settings.use_mocks:
        raise ConfigurationError(f"DECENTRO_RATELIMIT_KEY={options.ratelimit_key} needs Decentro(identity=...)")
    if options.ratelimit_storage_uri.startswith("memory://"):
        _check_memory_storage(options, settings)


class _Limiter(Limiter):
    """flask-limiter, without a race in its in-memory fallback: a request whose storage call
    failed after another thread had switched to memory is counted in memory too (flask-limiter
    raises its error, which answered a few 503s at the start of an outage under load). In
    ``refuse`` mode every limit's key is asked after the breaker (``guard``), the default key
    and a route's own (the status reads') alike."""

    guard: Callable[[Callable[[], str]], Callable[[], str]] | None = None
    default_key: Callable[[], str] = staticmethod(client_ip)

    def limit(self, *args: Any, **kwargs: Any) -> Any:
        return super().limit(*args, **self._guarded(kwargs))

    def shared_limit(self, *args: Any, **kwargs: Any) -> Any:
        return super().shared_limit(*args, **self._guarded(kwargs))

    def _guarded(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.guard is None:
            return kwargs
        return {**kwargs, "key_func": self.guard(kwargs.get("key_func") or self.default_key)}

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        try:
            super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)
        except LimitsStorageError:
            if not (self._in_memory_fallback_enabled and self._storage_dead):
                raise
            self.context.seen_limits.clear()  # as flask-limiter does before its own second try
            super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)


def build_limiter(app: Flask, options: FlaskOptions, settings: Settings,
                  identity: Callable[[], str | None] | None = None) -> Limiter:
    """A limiter of our own, so the host app's ``RATELIMIT_*`` defaults do not leak into it.

    It never turns off: a storage failure counts in memory or refuses, per
    ``DECENTRO_RATELIMIT_ON_STORAGE_ERROR``.
    """
    uri = options.ratelimit_storage_uri
    key = _key_func(options.ratelimit_key, identity)
    refuse = options.ratelimit_on_storage_error == "refuse"
    limiter = _Limiter(
        key,
        storage_uri=uri,
        storage_options=_storage_options(uri, options, settings),
        key_prefix=options.ratelimit_key_prefix,
        # The headers cost a window read from the storage after every hit (a Redis round trip).
        headers_enabled=options.ratelimit_headers,
        # Never off: an error either switches to the in-memory counts or reaches our 503 handler.
        swallow_errors=False,
        in_memory_fallback_enabled=not refuse,
        strategy="fixed-window",
        # Our limiter applies only where we decorate: never the app's RATELIMIT_DEFAULT.
        default_limits_exempt_when=_never,
        application_limits_exempt_when=_never,
    )
    limiter.default_key = key
    if refuse:
        breaker = CircuitBreaker(threshold=1, cooldown=settings.redis_cooldown)
        app.extensions[_BREAKER] = breaker
        limiter.guard = lambda inner: _refusing_key(inner, breaker, lambda: bool(limiter.storage.check()))
    limiter.init_app(app)
    return limiter

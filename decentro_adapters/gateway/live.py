"""The live gateway: Decentro over HTTPS with one pooled ``requests.Session``.

Credentials go in Decentro's static headers, whose names have underscores (``client_id``,
``client_secret``, ``module_secret``, and ``provider_secret`` for payments); a reverse proxy
in front of your egress must not drop them (nginx: ``underscores_in_headers on``).
Proxy and CA-bundle variables (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``) are read
once, when the gateway is built. Retries are the core's business: the session's own adapter never retries. requests' and
urllib3's exceptions are converted here, and the conversion says whether the request may
have reached Decentro (a refused connection did not; a reset after sending may have).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from decentro_core.errors import GatewayConnectionError, GatewayTimeout, UpstreamProtocolError
from decentro_core.ports import GatewayRequest, GatewayResponse, Module
from decentro_core.settings import Settings

__all__ = ["RequestsGateway"]

log = logging.getLogger("decentro.gateway")
# Failures that happen before a byte is sent (a bad URL or header in the configuration).
NOT_SENT = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader)
USER_AGENT = "flask-decentro/0.1"
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # Decentro's largest answers carry a photo or a signed ZIP: tens of KB


class RequestsGateway:
    """Implements :class:`decentro_core.ports.HttpGateway` over HTTP(S)."""

    def __init__(self, settings: Settings, *, session: requests.Session | None = None, pool_size: int = 20) -> None:
        self._base = settings.api_base.rstrip("/")
        self._timeout = (settings.connect_timeout, settings.timeout)
        self._settings = settings
        self._proxies: dict[str, str] = {}
        self._verify: bool | str = True
        if session is None:
            # requests re-reads proxy and CA-bundle variables from os.environ on every request
            # (trust_env), which costs more than our whole bookkeeping. Read them once, here:
            # the same settings, honoured the same way (NO_PROXY included).
            session = requests.Session()
            session.trust_env = False
            self._proxies = dict(requests.utils.get_environ_proxies(self._base))
            self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._session = session
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def headers_for(self, module: Module) -> dict[str, str]:
        s = self._settings
        headers = {
            "client_id": s.client_id,
            "client_secret": s.client_secret,
            "module_secret": s.module_secret(module),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if module == "payments":
            headers["provider_secret"] = s.payments_provider_secret
        elif module == "banking" and s.banking_provider_secret:
            headers["provider_secret"] = s.banking_provider_secret
        if not headers["module_secret"] and module == "kyc" and s.kyc_module_secret_optional:
            del headers["module_secret"]  # client_id and client_secret only
        return headers

    def send(self, request: GatewayRequest) -> GatewayResponse:
        url = self._base + request.path
        data = None if request.body is None else json.dumps(request.body, separators=(",", ":"))
        started = time.monotonic()
        # requests' read timeout is per socket read: an answer trickled a byte at a time would
        # never trip it. The whole exchange gets the budget the call's deadline left.
        budget = request.timeout if request.timeout is not None else sum(self._timeout)
        try:
            response = self._session.request(
                request.method, url, data=data, headers=self.headers_for(request.module),
                timeout=self._timeout_for(request), allow_redirects=False, proxies=self._proxies or None,
                verify=self._verify, stream=True,
            )
            try:
                raw = _read_within(response, budget - (time.monotonic() - started), request.reference_id)
            finally:
                response.close()
        except requests.ConnectTimeout as exc:
            raise GatewayConnectionError("Could not connect to Decentro in time",
                                         request_id=request.reference_id) from exc
        except requests.ReadTimeout as exc:
            raise GatewayTimeout("Decentro did not answer in time", request_id=request.reference_id) from exc
        except requests.ConnectionError as exc:
            raise _connection_error(exc, request.reference_id) from exc
        except NOT_SENT as exc:
            raise GatewayConnectionError("The request to Decentro could not be made",
                                         request_id=request.reference_id) from exc
        except requests.RequestException as exc:
            # Anything else (a body cut off mid-answer, a decoding failure) happened after the
            # request left: Decentro may have acted on it.
            raise GatewayTimeout("The answer from Decentro was lost after the request was sent",
                                 code="UPSTREAM_CONNECTION_LOST", request_id=request.reference_id) from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        log.debug("decentro %s %s -> %s in %.0f ms (ref %s)", request.method, request.path,
                  response.status_code, elapsed_ms, request.reference_id)
        return GatewayResponse(response.status_code, _json_object(response.status_code, raw, request.reference_id),
                               dict(response.headers))

    def _timeout_for(self, request: GatewayRequest) -> tuple[float, float]:
        """(connect, read) seconds: the read wait is cut to what the call's deadline leaves."""
        connect, read = self._timeout
        if request.timeout is not None:
            read = max(0.001, min(read, request.timeout))
            connect = min(connect, read)
        return connect, read

    def close(self) -> None:
        self._session.close()


def _connection_error(exc: requests.ConnectionError, reference_id: str) -> Exception:
    """A connection that never opened carried nothing; one lost after sending may have."""
    cause: Any = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)
    if isinstance(reason, NewConnectionError) or isinstance(cause, NewConnectionError):
        return GatewayConnectionError("Could not connect to Decentro", request_id=reference_id)
    return GatewayTimeout("The connection to Decentro was lost after the request was sent",
                          code="UPSTREAM_CONNECTION_LOST", request_id=reference_id)


def _read_within(response: requests.Response, seconds: float, reference_id: str) -> bytes:
    """The answer's body, read in at most ``seconds`` (a watchdog cuts the socket) and
    :data:`MAX_ANSWER_BYTES`; running out of time is a :class:`GatewayTimeout`."""
    cut = threading.Event()

    def stop() -> None:
        cut.set()
        _shut(response)

    alarm = _WATCHDOG.arm(max(seconds, 0.0), stop)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise UpstreamProtocolError("Decentro's answer is larger than any it documents",
                                            request_id=reference_id, upstream_status=response.status_code)
            chunks.append(chunk)
    except (requests.RequestException, OSError) as exc:
        if cut.is_set():
            raise GatewayTimeout("Decentro's answer did not arrive within the call's deadline",
                                 request_id=reference_id) from exc
        raise
    finally:
        alarm.cancel()
    if cut.is_set():
        raise GatewayTimeout("Decentro's answer did not arrive within the call's deadline", request_id=reference_id)
    return b"".join(chunks)


class _Alarm:
    __slots__ = ("due", "action", "cancelled")

    def __init__(self, due: float, action: Callable[[], None]) -> None:
        self.due, self.action, self.cancelled = due, action, False

    def __lt__(self, other: _Alarm) -> bool:
        return self.due < other.due

    def cancel(self) -> None:
        self.cancelled = True


class _Watchdog:
    """One daemon thread for every gateway's body-read deadline.

    A ``threading.Timer`` per request started an OS thread per call (and waited for it to
    start), which cost more wall time than the rest of the gateway. Here arming is a heap push
    under a lock; the thread wakes only for the earliest deadline, checked every
    ``RESOLUTION`` seconds at most, so a read is cut at most that late. Cancelled alarms are
    dropped when their time comes.
    """

    RESOLUTION = 0.05

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """No alarm, no thread yet (also a forked child's start: see ``_WATCHDOG``)."""
        self._heap: list[_Alarm] = []
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> _Alarm:
        alarm = _Alarm(time.monotonic() + seconds, action)
        with self._wake:
            earliest = self._heap[0].due if self._heap else None
            heapq.heappush(self._heap, alarm)
            if self._thread is None or not self._thread.is_alive():  # first use, or its thread ended
                self._thread = threading.Thread(target=self._run, name="decentro-read-watchdog", daemon=True)
                self._thread.start()
            elif earliest is None or alarm.due < earliest - self.RESOLUTION:
                self._wake.notify()
        return alarm

    def _run(self) -> None:
        while True:
            due: list[_Alarm] = []
            with self._wake:
                now = time.monotonic()
                while self._heap and self._heap[0].due <= now:
                    due.append(heapq.heappop(self._heap))
                if not due:
                    wait = (self._heap[0].due - now + self.RESOLUTION) if self._heap else None
                    self._wake.wait(wait)
                    continue
            for alarm in due:
                if not alarm.cancelled:
                    try:
                        alarm.action()
                    except Exception:  # noqa: BLE001 - the watchdog must outlive any one alarm
                        log.exception("decentro: a read deadline could not be enforced")


_WATCHDOG = _Watchdog()
# A forked child starts afresh, as the Redis cache's lock renewals do: the parent's alarms are
# not its own, and the parent's condition lock may have been held at the moment of the fork.
os.register_at_fork(after_in_child=_WATCHDOG.reset)


def _shut(response: requests.Response) -> None:
    """Wake a read blocked on the socket (closing it from another thread would not)."""
    connection = getattr(response.raw, "_connection", None) or getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _json_object(status_code: int, raw: bytes, reference_id: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        return body
    if status_code >= 500 or status_code == 429:
        return {}  # a proxy's HTML error page: the status alone drives the retry policy
    raise UpstreamProtocolError("Decentro's answer was not a JSON object", request_id=reference_id,
                                upstream_status=status_code, retryable=True)

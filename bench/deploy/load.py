"""Steady mixed load on the deployed app, and what every request got back.

A bounded pool of client threads (one ``requests`` session each) sends, until stopped: PAN
checks (a new synthetic user and PAN each time, so each is a cache miss that reaches the
sandbox), payments (a new purpose text each: one logical payment per request) and status reads
of payments made earlier, by the user who made them. The sandbox's callback deliverer is
watched too (:func:`watch_callbacks`): each signed delivery is a sample of kind ``callback``.

A :class:`Sample` says when a request was sent and answered, and how: ``ok`` (HTTP 200 with an
envelope, or a 2xx callback acknowledgement), ``<status> <error.code>`` (a JSON error),
``<status> non-JSON`` (HTML or any other body that is not a JSON object), or
``no answer (<exception>)`` (connection dropped or refused, or the client's timeout).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from decentro_core.webhooks import sign_body

from ..common import pan_for
from .app import USER_HEADER

__all__ = ["KINDS", "Load", "Sample", "classify", "watch_callbacks"]

KINDS = ("pan", "payment", "status", "callback")
ENVELOPE_STATUSES = frozenset({"SUCCESS", "FAILURE", "PENDING"})
CONSENT = {"given": True, "text": "I agree to this PAN check for the deployment fault run.",
           "purpose": "Deployment fault run customer onboarding check"}
CUSTOMER = {"name": "Kavya Loadtester", "email": "kavya@example.com", "phone": "9876543210"}
AMOUNTS = (10, 20, 30)  # the sandbox settles 10 SUCCESS and 20 FAILURE at once (a callback each); 30 stays PENDING
WEIGHTS = {"pan": 4, "payment": 3, "status": 3}


@dataclass
class Sample:
    """One request and its answer (times are ``time.monotonic()``)."""

    kind: str
    sent: float
    done: float
    outcome: str
    http_status: int | None = None
    reference_id: str | None = None
    status: str | None = None
    purpose: str | None = None
    user: str | None = None
    settled: bool = False  # a status read of a payment a client was already told was settled

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def non_json(self) -> bool:
        return self.outcome.endswith(" non-JSON")

    @property
    def no_answer(self) -> bool:
        return self.outcome.startswith("no answer")


def classify(response: requests.Response, *, callback: bool = False) -> tuple[str, dict[str, Any] | None]:
    """The outcome text of an HTTP answer and its JSON object (``None`` when it is not one)."""
    is_json = response.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    try:
        body = response.json() if is_json else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"{response.status_code} non-JSON", None
    if callback and 200 <= response.status_code < 300:
        return "ok", body
    if not callback and response.status_code == 200 and body.get("status") in ENVELOPE_STATUSES:
        return "ok", body
    error = body.get("error")
    code = (error.get("code") if isinstance(error, dict) else None) or body.get("response_code") or "NO_CODE"
    return f"{response.status_code} {code}", body


class Load:
    """Client threads sending a steady mix until :meth:`stop`; every answer becomes a :class:`Sample`."""

    def __init__(self, base_url: str, *, clients: int, pause: float, timeout: float, token: str) -> None:
        self.base_url, self.clients, self.pause, self.timeout, self.token = base_url, clients, pause, timeout, token
        self.samples: list[Sample] = []
        self._payments: list[tuple[str, str]] = []  # (reference id, user) of payments answered
        self._settled: set[str] = set()  # payments a status read or a delivered callback said were settled
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._numbers = itertools.count()
        self._flight: dict[int, float] = {}  # requests (and callbacks) sent and not yet answered
        self._threads = [threading.Thread(target=self._client, args=(i,), name=f"deploy-load-{i}", daemon=True)
                         for i in range(clients)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop sending; wait for requests in flight (each is bounded by the client timeout)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(self.timeout + 10)

    def record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)
            if sample.kind == "payment" and sample.ok and sample.reference_id and sample.user:
                self._payments.append((sample.reference_id, sample.user))
            if sample.ok and sample.reference_id and sample.status in ("SUCCESS", "FAILURE"):
                self._settled.add(sample.reference_id)

    def begin(self) -> tuple[int, float]:
        """Note a request leaving now; give the token to :meth:`end` when it is answered."""
        token, sent = next(self._numbers), time.monotonic()
        with self._lock:
            self._flight[token] = sent
        return token, sent

    def end(self, token: int) -> None:
        with self._lock:
            self._flight.pop(token, None)

    def in_flight_before(self, moment: float) -> int:
        """Requests sent before ``moment`` still waiting for their answer."""
        with self._lock:
            return sum(1 for sent in self._flight.values() if sent < moment)

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def answered_since(self, moment: float, *, ok: bool = False) -> int:
        """Requests sent at or after ``moment`` that have an answer (successful ones, with ``ok``)."""
        return sum(1 for s in self.snapshot() if s.sent >= moment and (s.ok or not ok))

    def kinds_ok_since(self, moment: float) -> set[str]:
        return {s.kind for s in self.snapshot() if s.sent >= moment and s.ok}

    # -- the clients ---------------------------------------------------------------------

    def _client(self, index: int) -> None:
        rng = random.Random(f"{self.token}-{index}")
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        with requests.Session() as http:
            while not self._stopping.is_set():
                kind = rng.choices(kinds, weights)[0]
                number = next(self._numbers)
                if kind == "pan":
                    sample = self._pan(http, number)
                elif kind == "payment":
                    sample = self._payment(http, number, rng)
                else:
                    sample = self._status(http, number, rng)
                self.record(sample)
                self._stopping.wait(self.pause)

    def _pan(self, http: requests.Session, number: int) -> Sample:
        user = f"deploy-{self.token}-{number}"
        body = {"pan": pan_for(number), "consent": CONSENT}
        return self._send(http, "pan", "POST", "/api/kyc/pan", user=user, json=body)

    def _payment(self, http: requests.Session, number: int, rng: random.Random) -> Sample:
        user = f"deploy-{self.token}-{number}"
        purpose = f"Deploy {self.token} order {number}"
        body = {"amount": rng.choice(AMOUNTS), "customer_details": CUSTOMER, "purpose": purpose}
        return self._send(http, "payment", "POST", "/api/payments", user=user, json=body, purpose=purpose)

    def _status(self, http: requests.Session, number: int, rng: random.Random) -> Sample:
        with self._lock:
            recent = self._payments[-200:]
        if not recent:
            return self._pan(http, number)
        reference, user = rng.choice(recent)
        with self._lock:
            settled = reference in self._settled
        sample = self._send(http, "status", "GET", f"/api/payments/{reference}", user=user, reference=reference)
        sample.settled = settled
        return sample

    def _send(self, http: requests.Session, kind: str, method: str, path: str, *, user: str,
              json: dict[str, Any] | None = None, purpose: str | None = None, reference: str | None = None) -> Sample:
        token, sent = self.begin()
        try:
            response = http.request(method, self.base_url + path, json=json, headers={USER_HEADER: user},
                                    timeout=self.timeout)
        except requests.RequestException as exc:
            return Sample(kind, sent, time.monotonic(), f"no answer ({type(exc).__name__})", purpose=purpose,
                          user=user, reference_id=reference)
        finally:
            self.end(token)
        outcome, answer = classify(response)
        body: dict[str, Any] = answer or {}
        found = body.get("data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        return Sample(kind, sent, time.monotonic(), outcome, response.status_code,
                      reference_id=data.get("reference_id") or reference, status=body.get("status"),
                      purpose=purpose, user=user)


def watch_callbacks(deliverer: Any, load: Load) -> None:
    """Send the sandbox's callbacks through a recording copy of its ``_post`` (same signing, counts).

    The deliverer tells only "delivered or not"; the run needs each attempt's answer and time.
    """

    def post(body: bytes) -> bool:
        url = deliverer.url
        if not url:
            return False
        deliverer._count("attempted")
        payload = json.loads(body)
        headers = {"Content-Type": "application/json", "X-Decentro-Signature": sign_body(body, deliverer.secret)}
        reference, status = payload.get("referenceId"), payload.get("transactionStatus")
        token, sent = load.begin()
        try:
            response = deliverer._session.post(url, data=body, headers=headers, timeout=deliverer.timeout)
            outcome, _ = classify(response, callback=True)
            response.close()
        except requests.RequestException as exc:
            load.record(Sample("callback", sent, time.monotonic(), f"no answer ({type(exc).__name__})",
                               reference_id=reference, status=status))
            return False
        finally:
            load.end(token)
        load.record(Sample("callback", sent, time.monotonic(), outcome, response.status_code, reference_id=reference,
                           status=status))
        return bool(200 <= response.status_code < 300)

    deliverer._post = post

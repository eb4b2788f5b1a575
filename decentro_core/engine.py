"""How one operation runs: write-ahead record, retries, sealing, audit, and the KYC cache.

The :class:`Engine` holds the ports and does the work every operation shares; the public
methods in :mod:`decentro_core.service` only validate input and pick the endpoint, body
and parser. Order of events for one call:

1. a ``PENDING`` record is written for the reference id before anything is sent (nothing
   is lost if the process dies mid-call);
2. the request is sent under the retry policy (:mod:`decentro_core.retry`); a ``READ``
   retry writes a fresh record for its fresh reference id and marks the previous ``RETRIED``;
3. the answer is normalised, the record updated with the sealed result, an audit event appended.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .envelope import Outcome, failure, to_envelope
from .errors import (
    AadhaarFileRejected,
    DecentroError,
    DuplicateReference,
    GatewayTimeout,
    StoreError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from .operations import Endpoint
from .masking import mask_aadhaar
from .ports import (
    AadhaarKyc,
    AadhaarVerifier,
    AuditEvent,
    AuditSink,
    Cache,
    Clock,
    ConsentStore,
    GatewayRequest,
    GatewayResponse,
    HttpGateway,
    IdFactory,
    OperationRecord,
    RecordStore,
    Vault,
)
from .retry import RetryMode, RetryPolicy, raise_for_transient_status, run_with_retry
from .settings import Settings

__all__ = ["Call", "Engine"]

log = logging.getLogger("decentro")

# Local operations (offline Aadhaar) send nothing to Decentro; they still get records and audit.
LOCAL = Endpoint("POST", "local:", "kyc", RetryMode.READ)
AADHAAR_MESSAGES = {
    "AADHAAR_SIGNATURE_INVALID": "The file's UIDAI signature does not verify.",
    "AADHAAR_SIGNATURE_MISSING": "The file carries no UIDAI signature.",
    "AADHAAR_FILE_TOO_OLD": "The file is older than the accepted age.",
    "AADHAAR_FILE_FROM_FUTURE": "The file's generation time is in the future.",
    "AADHAAR_SHARE_CODE_WRONG": "The share code does not open the file.",
    "AADHAAR_FORMAT_UNSUPPORTED": "The file is not a supported offline e-KYC format.",
    "AADHAAR_FILE_TOO_LARGE": "The file is larger than the accepted size.",
    "AADHAAR_XML_UNSAFE": "The file contains XML constructs that are refused.",
    "AADHAAR_XML_MALFORMED": "The file is not well-formed XML.",
    "AADHAAR_ZIP_INVALID": "The ZIP is damaged or does not hold exactly one XML file.",
    "AADHAAR_REFERENCE_INVALID": "The file's reference id is malformed.",
}


def _no_parse(response: GatewayResponse, reference: str) -> Outcome:
    raise AssertionError("local operations parse no Decentro answer")


def _aadhaar_fields(kyc: AadhaarKyc) -> dict[str, Any]:
    return {
        "aadhaar_last4": kyc.aadhaar_last4, "masked_aadhaar": mask_aadhaar("0" * 8 + kyc.aadhaar_last4),
        "generated_at": kyc.generated_at.isoformat(), "name": kyc.name, "date_of_birth": kyc.date_of_birth,
        "gender": kyc.gender, "address": dict(kyc.address), "photo": kyc.photo_base64,
        "mobile_verified": kyc.mobile_verified, "email_verified": kyc.email_verified,
        "signature_verified": True, "signer": kyc.signer, "verified_locally": True,
    }


@dataclass(frozen=True)
class Call:
    """One operation to run: what to send, how to read it, and what to record."""

    operation: str
    endpoint: Endpoint
    body: Callable[[str], Mapping[str, Any] | None]
    parse: Callable[[GatewayResponse, str], Outcome]
    subject: str
    sealed_input: Mapping[str, Any]
    path_params: Mapping[str, str] | None = None
    user_id: str | None = None
    actor: str = "system"
    envelope_fields: Mapping[str, Any] | None = None  # added to every envelope, whatever the outcome


@dataclass
class Engine:
    settings: Settings
    gateway: HttpGateway
    cache: Cache
    vault: Vault
    audit: AuditSink
    consents: ConsentStore
    records: RecordStore
    aadhaar_verifier: AadhaarVerifier
    clock: Clock
    new_reference_id: IdFactory
    sleep: Callable[[float], None]
    rng: random.Random

    @property
    def policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(max_retries=s.max_retries, backoff_base=s.backoff_base, backoff_max=s.backoff_max)

    # -- sealing -------------------------------------------------------------------------

    def seal_json(self, value: Any) -> str:
        return self.vault.seal(json.dumps(value, sort_keys=True, default=str).encode())

    def open_json(self, token: str) -> Any:
        return json.loads(self.vault.open(token))

    # -- records and audit ---------------------------------------------------------------

    def open_record(self, reference_id: str, call: Call) -> OperationRecord:
        """Write the PENDING record for a reference id before anything is sent."""
        now = self.clock()
        record = OperationRecord(
            reference_id=reference_id, operation=call.operation, status="PENDING", created_at=now, updated_at=now,
            user_id=call.user_id, sealed_request=self.seal_json(call.sealed_input),
        )
        self.records.save_operation(record)
        return record

    def settle_record(self, record: OperationRecord, status: str, *, operation_id: str | None = None,
                      result: Any = None) -> OperationRecord:
        """Save the record's new status (the caller holds the record: no read before the write).

        The store keeps a settled status a callback wrote meanwhile (``RecordStore.save_operation``).
        """
        updated = replace(
            record, status=status, updated_at=self.clock(), operation_id=operation_id or record.operation_id,
            sealed_result=self.seal_json(result) if result is not None else record.sealed_result,
        )
        self.records.save_operation(updated)
        return updated

    def record_audit(self, call: Call, outcome: str, *, reference_id: str | None, operation_id: str | None) -> None:
        self.audit.append(AuditEvent(
            actor=call.actor, action=call.operation, subject=call.subject, outcome=outcome,
            occurred_at=self.clock(), operation_id=operation_id, reference_id=reference_id,
        ))
        log.info("decentro %s %s -> %s (ref %s)", call.operation, call.subject, outcome, reference_id)

    # -- running a call ------------------------------------------------------------------

    def run(self, call: Call) -> dict[str, Any]:
        """Send ``call`` under the retry policy and return the envelope (or raise typed)."""
        current = [self.open_record(self.new_reference_id(), call)]
        attempts = [0]

        def attempt(number: int) -> tuple[Outcome, str]:
            attempts[0] = number
            if number > 1 and call.endpoint.mode is RetryMode.READ:
                self.settle_record(current[0], "RETRIED")
                current[0] = self.open_record(self.new_reference_id(), call)
            reference = current[0].reference_id
            response = self.gateway.send(self._request(call, reference))
            raise_for_transient_status(response, request_id=reference)
            return call.parse(response, reference), reference

        try:
            outcome, reference = run_with_retry(
                attempt, mode=call.endpoint.mode, policy=self.policy, sleep=self.sleep, rng=self.rng
            )
        except DecentroError as exc:
            reference = current[0].reference_id
            unknown = self._outcome_unknown(call, exc, attempts=attempts[0])
            if unknown is None:
                self.settle_record(current[0], "FAILURE", result={"error": exc.code})
                self.record_audit(call, exc.code, reference_id=reference, operation_id=None)
                raise
            outcome = unknown
        envelope = to_envelope(outcome, reference_id=reference, extra=call.envelope_fields)
        try:
            self.settle_record(current[0], outcome.status, operation_id=outcome.operation_id, result=envelope)
            self.record_audit(call, outcome.error_code or outcome.status, reference_id=reference,
                              operation_id=outcome.operation_id)
        except StoreError:
            if call.endpoint.mode is not RetryMode.WRITE:
                raise
            # Decentro acted on it: raising now would invite the caller to pay or send again.
            # The PENDING record written before sending stays for reconciliation.
            log.error("decentro %s: the outcome could not be recorded (ref %s); the PENDING record remains",
                      call.operation, reference)
        return envelope

    def _request(self, call: Call, reference: str) -> GatewayRequest:
        path = call.endpoint.path.format(
            sms_path=self.settings.sms_path, email_path=self.settings.email_path, **(call.path_params or {})
        )
        return GatewayRequest(call.endpoint.method, path, call.endpoint.module, reference, call.body(reference))

    @staticmethod
    def _outcome_unknown(call: Call, exc: DecentroError, *, attempts: int) -> Outcome | None:
        """For a WRITE whose request may have been acted on, the honest answer is PENDING."""
        if call.endpoint.mode is not RetryMode.WRITE or not isinstance(exc, UpstreamError):
            return None
        maybe_accepted = isinstance(exc, (GatewayTimeout, UpstreamProtocolError)) or (
            isinstance(exc, UpstreamUnavailable) and exc.upstream_status != 503
        )
        # A duplicate on a retry means an earlier attempt with this same reference was accepted.
        duplicate_after_retry = isinstance(exc, DuplicateReference) and attempts > 1
        if not (maybe_accepted or duplicate_after_retry):
            return None
        return Outcome("PENDING", None, {"reconciliation": "OUTCOME_UNKNOWN", "reason": exc.code})

    # -- local Aadhaar verification -------------------------------------------------------

    def verify_aadhaar_file(self, content: bytes, share_code: str, *, mobile: str | None, email: str | None,
                            user_id: str | None, actor: str) -> dict[str, Any]:
        """Verify an offline e-KYC file locally. A rejected file is a FAILURE envelope with the
        rejection's code; the file itself is sealed in the record, the share code never stored."""
        reference = self.new_reference_id()
        operation_id = "LOCAL-" + reference.replace("-", "")[:20].upper()
        call = Call(operation="aadhaar_xml", endpoint=LOCAL, body=lambda ref: None, parse=_no_parse,
                    subject="aadhaar offline file", sealed_input={"file_base64": base64.b64encode(content).decode()},
                    user_id=user_id, actor=actor)
        record = self.open_record(reference, call)
        try:
            kyc = self.aadhaar_verifier.verify(content, share_code, mobile=mobile, email=email)
        except AadhaarFileRejected as exc:
            outcome = failure(exc.code, operation_id=operation_id)
        else:
            outcome = Outcome("SUCCESS", operation_id, _aadhaar_fields(kyc))
            call = replace(call, subject=mask_aadhaar("0" * 8 + kyc.aadhaar_last4))
        envelope = to_envelope(outcome, reference_id=reference)
        if outcome.error_code:
            envelope["error"]["message"] = AADHAAR_MESSAGES.get(outcome.error_code, "The Aadhaar file was rejected.")
        self.settle_record(record, outcome.status, operation_id=operation_id, result=envelope)
        self.record_audit(call, outcome.error_code or outcome.status, reference_id=reference, operation_id=operation_id)
        return envelope

    # -- KYC cache -----------------------------------------------------------------------

    def cache_key(self, user_id: str, kind: str, document: str | None = None) -> str:
        parts = ["kyc", self.vault.fingerprint(user_id), kind]
        if document is not None:
            parts.append(self.vault.fingerprint(f"{kind}:{document}"))
        return ":".join(parts)

    def cache_get(self, key: str) -> Any:
        sealed = self.cache.get(key)
        if sealed is None:
            return None
        try:
            return self.open_json(sealed.decode())
        except DecentroError:
            log.warning("decentro cache entry could not be opened (key rotated?); ignoring it")
            self.cache.delete(key)
            return None

    def cache_set(self, key: str, value: Any, *, ttl: int) -> None:
        self.cache.set(key, self.seal_json(value).encode(), ttl=ttl)

    def cached_or_run(self, call: Call, *, document: str) -> dict[str, Any]:
        """Serve a fresh cached result for the same user and document, or run ``call`` once.

        Concurrent identical misses wait on one lock (across processes with a shared cache),
        so a document is verified, and billed, once.
        """
        if call.user_id is None:
            return self.run(call)
        key = self.cache_key(call.user_id, call.operation, document)
        hit = self.cache_get(key)
        if hit is None:
            with self.cache.lock(key + ":lock", timeout=self.settings.timeout + 5) as won:
                if not won:
                    # Availability over exactness: the holder is slower than a whole call may
                    # take, so this caller goes ahead (and may be billed once more).
                    log.warning("decentro %s: single-flight lock not won in time; calling anyway", call.operation)
                hit = self.cache_get(key)
                if hit is None:
                    envelope = self.run(call)
                    if envelope["status"] == "SUCCESS":
                        sealed = self.seal_json(envelope).encode()  # one seal serves both keys
                        for cache_key in (key, self.cache_key(call.user_id, call.operation)):
                            self.cache.set(cache_key, sealed, ttl=self.settings.cache_ttl)
                    return envelope
        self.record_audit(call, "CACHE_HIT", reference_id=hit["data"].get("reference_id"),
                          operation_id=hit["data"].get("operation_id"))
        return {**hit, "data": {**hit["data"], "cached": True}}

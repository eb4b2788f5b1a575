"""Drive ``decentro-in-collections-python-sdk`` against the sandbox (runs in the SDK's own venv).

All five operations have endpoints the sandbox serves. Each public method is called with
``validate=True`` (the SDK builds its pydantic model from the answer); the raw answer is
captured on the way (the public method calls ``self.raw.<method>``) and also checked with the
generated schema class the SDK maps to that HTTP status, whose own deserializer cannot run
it (``NameError: body_data`` in ``api_client.deserialize`` with ``skip_deserialization=False``).
Refusals (non-2xx) raise ``ApiException`` before the pydantic step; their body is checked with
the SDK's 400 pydantic model and schema, as the SDK declares them.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from driver_common import Recorder, arguments, ref, run

from decentro_in_collections_client import Decentro
from decentro_in_collections_client.exceptions import ApiException
from decentro_in_collections_client.paths import PathValues
from urllib3._collections import HTTPHeaderDict

import conformance_cases

PAYEE = "SANDBOXPAYEE01"
PURPOSE = "Welcome to Decentro"  # the spec's example
# method -> (path, SDK module of the operation, pydantic model per status ("default": any))
OPERATIONS: dict[str, tuple[str, str, dict[str, str]]] = {
    "generate_payment_link": ("/v2/payments/upi/link", "v2_payments_upi_link.post",
                              {"200": "GeneratePaymentLinkResponse", "400": "GeneratePaymentLink400Response"}),
    "issue_collect_request": ("/v2/payments/collection", "v2_payments_collection.post",
                              {"200": "IssueCollectRequestResponse", "400": "IssueCollectRequest400Response"}),
    "get_transaction_status": ("/v2/payments/transaction/{transaction_id}/status",
                               "v2_payments_transaction_transaction_id_status.get",
                               {"default": "GetTransactionStatusResponse"}),
    "validate_upi_handle": ("/v2/payments/vpa/validate", "v2_payments_vpa_validate.post",
                            {"200": "ValidateUpiHandleResponse", "400": "ValidateUpiHandle400Response"}),
    "issue_upi_refund": ("/v2/payments/upi/refund", "v2_payments_upi_refund.post",
                         {"200": "IssueUpiRefundResponse", "400": "IssueUpiRefund400Response"}),
}


class Driver:
    def __init__(self, args: Any) -> None:
        self.recorder = Recorder("collections", conformance_cases.COLLECTIONS_CASES)
        self.client = self._client(args, args.provider_secret)
        self.wrong = self._client(args, "not-the-provider-secret")

    @staticmethod
    def _client(args: Any, provider_secret: str) -> Decentro:
        return Decentro(host=args.url, client_id=args.client_id, client_secret=args.client_secret,
                        module_secret=args.module_secret, provider_secret=provider_secret)

    def call(self, case: str, method: str, client: Decentro | None = None, **kwargs: Any) -> dict[str, Any]:
        """Call the public ``method`` with ``validate=True``; record the answer and every model's verdict."""
        api = (client or self.client).collections
        captured: list[Any] = []
        raw_method = getattr(api.raw, method)

        def capture(*args: Any, **kw: Any) -> Any:
            captured.append(raw_method(*args, **kw))
            return captured[-1]

        setattr(api.raw, method, capture)
        try:
            model = getattr(api, method)(validate=True, **kwargs)
            status, body = captured[-1].status, captured[-1].body
            checks = [(f"pydantic:{type(model).__name__}", lambda: None)]  # the SDK built it
            checks += self._schema_checks(method, status, body, pydantic=False)
        except ApiException as refused:
            status, body = refused.status, refused.body
            checks = self._schema_checks(method, status, body, pydantic=True)
        finally:
            setattr(api.raw, method, raw_method)
        self.recorder.record(case, status, body, checks)
        self.recorder.exercised[method] = OPERATIONS[method][0]
        return body if isinstance(body, dict) else {}

    def raw_post(self, case: str, method: str, body: dict[str, Any]) -> None:
        """Send ``body`` as is through the SDK's ApiClient (for a request the SDK cannot build)."""
        path, module_name, _ = OPERATIONS[method]
        module = importlib.import_module(f"decentro_in_collections_client.paths.{module_name}")
        headers = HTTPHeaderDict({"Content-Type": "application/json", "Accept": "application/json"})
        response = self.client.collections.api_client.call_api(
            resource_path=path, method="POST", headers=headers, serialized_body=json.dumps(body).encode(),
            body=body, auth_settings=module._auth)
        status, answer = response.http_response.status, json.loads(response.http_response.data)
        self.recorder.record(case, status, answer, self._schema_checks(method, status, answer, pydantic=True))

    def _schema_checks(self, method: str, status: int, body: Any, *, pydantic: bool) -> list[tuple[str, Any]]:
        _, module_name, models = OPERATIONS[method]
        module = importlib.import_module(f"decentro_in_collections_client.paths.{module_name}")
        response = module._status_code_to_response.get(str(status)) or module._status_code_to_response.get("default")
        if response is None:
            return []  # Decentro's spec defines no model for this status
        schema = response.content["application/json"].schema
        configuration = self.client.collections.api_client.configuration
        checks = [(f"schema:{schema.__name__}", lambda: schema.from_openapi_data_oapg(body, _configuration=configuration))]
        name = models.get(str(status)) or models.get("default")
        if pydantic and name:
            model = getattr(importlib.import_module(f"decentro_in_collections_client.pydantic.{_snake(name)}"), name)
            checks.append((f"pydantic:{name}", lambda: model(**body)))
        return checks


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def link(driver: Driver, case: str, amount: float, purpose: str = PURPOSE, client: Decentro | None = None) -> str:
    body = driver.call(case, "generate_payment_link", client=client, reference_id=ref(), payee_account=PAYEE,
                       amount=amount, purpose_message=purpose, generate_qr=1, expiry_time=30, generate_uri=1)
    return str((body.get("data") or {}).get("transactionId", "NOT-CREATED"))


def scenario(driver: Driver) -> None:
    r = driver.recorder
    created: dict[str, str] = {}
    run(r, "generate_payment_link", lambda: created.update(success=link(driver, "generate_payment_link", 10)))
    run(r, "generate_payment_link_hyphen_purpose", lambda: created.update(
        failure=link(driver, "generate_payment_link_hyphen_purpose", 20, "Order-123 payment")))
    run(r, "generate_payment_link_unsanitized_purpose",
        lambda: link(driver, "generate_payment_link_unsanitized_purpose", 10, "Order #42!"))
    run(r, "generate_payment_link_wrong_provider_secret",
        lambda: link(driver, "generate_payment_link_wrong_provider_secret", 10, client=driver.wrong))
    run(r, "issue_collect_request", lambda: created.update(pending=str(driver.call(
        "issue_collect_request", "issue_collect_request", reference_id=ref(), payer_upi="charles.babbage@okhdfc",
        payee_account=PAYEE, amount=30, purpose_message=PURPOSE, expiry_time=30)["data"]["transactionId"])))
    run(r, "issue_collect_request_missing_payer_upi", lambda: driver.raw_post(
        "issue_collect_request_missing_payer_upi", "issue_collect_request",
        {"reference_id": ref(), "payee_account": PAYEE, "amount": 1, "purpose_message": PURPOSE}))
    for case, key in (("get_transaction_status_pending", "pending"), ("get_transaction_status_success", "success"),
                      ("get_transaction_status_failure", "failure")):
        run(r, case, lambda case=case, key=key: driver.call(case, "get_transaction_status",
                                                            transaction_id=created[key]))
    run(r, "get_transaction_status_unknown", lambda: driver.call(
        "get_transaction_status_unknown", "get_transaction_status", transaction_id="UNKNOWN0000"))
    for case, vpa in (("validate_upi_handle_valid", "charles.babbage@okhdfc"),
                      ("validate_upi_handle_invalid", "alan.turing@oksbi"),
                      ("validate_upi_handle_bad_format", "not-a-vpa")):
        run(r, case, lambda case=case, vpa=vpa: driver.call(case, "validate_upi_handle", reference_id=ref(),
                                                            upi_id=vpa, type="BASIC"))
    for case, key in (("issue_upi_refund", "success"), ("issue_upi_refund_again", "success"),
                      ("issue_upi_refund_pending", "pending")):
        run(r, case, lambda case=case, key=key: driver.call(case, "issue_upi_refund", reference_id=ref(),
                                                            transaction_id=created[key], purpose_message=PURPOSE))
    run(r, "issue_upi_refund_unknown", lambda: driver.call("issue_upi_refund_unknown", "issue_upi_refund",
                                                           reference_id=ref(), transaction_id="UNKNOWN0000"))


def main() -> None:
    driver = Driver(arguments())
    scenario(driver)
    import decentro_in_collections_client
    version = getattr(decentro_in_collections_client, "__version__", "unknown")
    driver.recorder.output(version=version, sdk_paths=[p.value for p in PathValues])


if __name__ == "__main__":
    main()

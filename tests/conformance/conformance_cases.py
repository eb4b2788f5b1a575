"""The conformance cases: what each SDK call must answer, and which SDK models must accept it.

Plain data, shared by the tests (project venv) and the drivers (each SDK's own venv). A case
is ``name -> (HTTP status, models that must parse the body, {dotted field: expected value})``.
Model names are ``"schema:<Name>"`` (the SDK's generated schema class, the check its
``skip_deserialization=False`` path runs) or ``"pydantic:<Name>"`` (the collections SDK's
pydantic model, what its ``validate=True`` path builds). A 401 has no model in Decentro's specs.
"""

from __future__ import annotations

KYC_SDK = "decentro-in-kyc-python-sdk==4.4.0"
COLLECTIONS_SDK = "decentro-in-collections-python-sdk==1.0.0"
# Packaging workarounds, in the test setup only (see sdk_patches/README.md and docs/sandbox.md).
KYC_SDK_FIXES = ("typing_extensions>=4.12",)

_VALIDATE = ["schema:ValidateResponse"]
_VALIDATE_400 = ["schema:Validate400Response"]


def _both(name: str) -> list[str]:
    return [f"pydantic:{name}", f"schema:{name}"]


KYC_CASES: dict[str, tuple[int, list[str], dict[str, object]]] = {
    "validate_pan": (200, _VALIDATE, {"kycStatus": "SUCCESS", "kycResult.idStatus": "VALID"}),
    "validate_pan_detailed": (200, _VALIDATE, {"kycResult.panStatus": "VALID", "kycResult.aadhaarSeedingStatus": "Y"}),
    "validate_pan_invalid": (200, _VALIDATE, {"kycResult.idStatus": "INVALID"}),
    "validate_pan_no_record": (200, _VALIDATE, {"kycStatus": "UNKNOWN", "error.responseCode": "E00026"}),
    "validate_missing_consent": (400, _VALIDATE_400, {
        "status": "FAILURE", "kycStatus": "UNKNOWN", "error.responseCode": "E00009",
        "error.message": "User consent cannot be empty. Hint: consent (string)"}),
    "validate_short_consent_purpose": (400, _VALIDATE_400, {"kycStatus": "UNKNOWN", "error.responseCode": "E00009"}),
    "validate_unknown_document_type": (400, _VALIDATE_400, {"kycStatus": "UNKNOWN", "error.responseCode": "E00016"}),
    "validate_wrong_module_secret": (401, [], {"status": "FAILURE", "responseKey": "error_unauthorized_module"}),
}

COLLECTIONS_CASES: dict[str, tuple[int, list[str], dict[str, object]]] = {
    "generate_payment_link": (200, _both("GeneratePaymentLinkResponse"), {
        "responseKey": "success_payment_link_created", "data.transactionStatus": "PENDING"}),
    "generate_payment_link_hyphen_purpose": (200, _both("GeneratePaymentLinkResponse"), {"status": "SUCCESS"}),
    "generate_payment_link_unsanitized_purpose": (400, _both("GeneratePaymentLink400Response"), {
        "responseCode": "E00009", "responseKey": "error_unsanitized_values"}),
    "generate_payment_link_wrong_provider_secret": (401, [], {"responseKey": "unauthorized_provider"}),
    "issue_collect_request": (200, _both("IssueCollectRequestResponse"), {
        "data.transactionStatus": "PENDING", "data.bankReferenceNumber": "NA"}),
    "issue_collect_request_missing_payer_upi": (400, _both("IssueCollectRequest400Response"), {
        "responseCode": "E00009", "responseKey": "error_missing_UPI_id"}),
    "get_transaction_status_pending": (200, _both("GetTransactionStatusResponse"), {
        "data.transactionStatus": "PENDING", "data.bankReferenceNumber": "NA", "data.npciTxnId": "NA"}),
    "get_transaction_status_success": (200, _both("GetTransactionStatusResponse"), {"data.transactionStatus": "SUCCESS"}),
    "get_transaction_status_failure": (200, _both("GetTransactionStatusResponse"), {"data.transactionStatus": "FAILURE"}),
    "get_transaction_status_unknown": (400, _both("GetTransactionStatusResponse"), {
        "status": "FAILURE", "responseCode": "E00009"}),
    "validate_upi_handle_valid": (200, _both("ValidateUpiHandleResponse"), {
        "responseKey": "success_UPI_id_valid", "data.status": "VALID"}),
    "validate_upi_handle_invalid": (200, _both("ValidateUpiHandleResponse"), {
        "responseKey": "success_UPI_id_invalid", "data.status": "INVALID"}),
    "validate_upi_handle_bad_format": (400, _both("ValidateUpiHandle400Response"), {
        "responseKey": "error_invalid_UPI_id_format"}),
    "issue_upi_refund": (200, _both("IssueUpiRefundResponse"), {"data.transactionStatus": "PENDING"}),
    "issue_upi_refund_again": (400, _both("IssueUpiRefund400Response"), {"responseCode": "E00009"}),
    "issue_upi_refund_pending": (400, _both("IssueUpiRefund400Response"), {"responseCode": "E00009"}),
    "issue_upi_refund_unknown": (400, _both("IssueUpiRefund400Response"), {"responseCode": "E00009"}),
}

"""Valid request bodies for the emulator's paths (helpers, no tests), shared with the sandbox tests."""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count(1)

PAN_PATH = "/kyc/public_registry/validate"
CKYC_PATH = "/v2/kyc/ckyc/search"
BANK_PATH = "/core_banking/money_transfer/validate_account"
OTP_PATH = "/v2/kyc/aadhaar/otp"
OTP_VALIDATE_PATH = "/v2/kyc/aadhaar/otp/validate"
LINK_PATH = "/v2/payments/upi/link"
COLLECTION_PATH = "/v2/payments/collection"
VPA_PATH = "/v2/payments/vpa/validate"
REFUND_PATH = "/v2/payments/upi/refund"
SMS_PATH = "/v2/notifications/sms"
EMAIL_PATH = "/v2/notifications/email"


def ref() -> str:
    return f"test-ref-{next(_counter)}"


def pan(id_number: str = "ABCDE1234F", **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "document_type": "PAN", "id_number": id_number, "consent": "Y",
            "consent_purpose": "Verifying the customer's identity for onboarding", **over}


def ckyc(id_number: str = "ABCDE1234A", **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "document_type": "PAN", "id_number": id_number, "consent": True,
            "consent_purpose": "Customer onboarding KYC", **over}


def bank(account: str = "123456789011", ifsc: str = "SBIN0001077", **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "purpose_message": "Verify payout account",
            "validation_type": "penniless",
            "beneficiary_details": {"account_number": account, "ifsc": ifsc, "name": "Test Payee"}, **over}


def otp_start(aadhaar: str = "234567891234", **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "consent": True, "purpose": "Customer onboarding KYC",
            "aadhaar_number": aadhaar, **over}


def otp_validate(initiation: str, otp: str = "123456", **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "consent": True, "purpose": "Customer onboarding KYC",
            "initiation_transaction_id": initiation, "otp": otp, "share_code": "1234",
            "generate_pdf": False, "generate_xml": False, **over}


def link(amount: Any = 10, **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "payee_account": "EMULATORACC01", "amount": amount,
            "purpose_message": "Order 42", "generate_qr": 1, "expiry_time": 30, "generate_uri": 1, **over}


def collect(amount: Any = 10, **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "payer_upi": "charles.babbage@okhdfc", "payee_account": "EMULATORACC01",
            "amount": amount, "purpose_message": "Order 42", "expiry_time": 30, **over}


def vpa(upi_id: str, **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "upi_id": upi_id, "type": "basic", **over}


def refund(**over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "purpose_message": "Refund for order 42", **over}


def sms(to: str = "9876543210", **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "to": to, "message": "Your code is 4321", **over}


def email(to: str = "someone@example.com", **over: Any) -> dict[str, Any]:
    return {"reference_id": ref(), "to": to, "subject": "Hello", "body": "Welcome aboard", **over}

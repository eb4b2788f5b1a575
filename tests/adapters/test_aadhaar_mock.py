"""MockAadhaarVerifier: the guide's any-content-succeeds behaviour and its magic values."""

from __future__ import annotations

from datetime import datetime, timezone

import aadhaar_vectors as vectors
import pytest

from decentro_adapters.aadhaar.mock import MockAadhaarVerifier
from decentro_core.errors import AadhaarFileRejected

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)


def test_any_content_returns_the_synthetic_holder():
    kyc = MockAadhaarVerifier(now=lambda: NOW).verify(b"xml_content", "1234")
    assert (kyc.aadhaar_last4, kyc.name, kyc.generated_at, kyc.signer) == (
        "0000",
        "Mock Aadhaar Holder",
        NOW,
        "mock",
    )
    assert (kyc.mobile_verified, kyc.email_verified) == (None, None)


def test_a_real_signed_file_also_gets_the_synthetic_holder_not_its_contents():
    content = vectors.zip_file(vectors.signed_xml(generated_at=NOW), vectors.SHARE_CODE)
    kyc = MockAadhaarVerifier().verify(content, vectors.SHARE_CODE, mobile=vectors.MOBILE)
    assert kyc.name == "Mock Aadhaar Holder"
    assert kyc.mobile_verified is True


@pytest.mark.parametrize(
    ("content", "share_code", "code"),
    [
        (b"<x>tampered</x>", "1234", "AADHAAR_SIGNATURE_INVALID"),
        (b"expired file", "1234", "AADHAAR_FILE_TOO_OLD"),
        (b"xml_content", "0000", "AADHAAR_SHARE_CODE_WRONG"),
    ],
)
def test_magic_values_produce_their_rejections(content, share_code, code):
    with pytest.raises(AadhaarFileRejected) as caught:
        MockAadhaarVerifier().verify(content, share_code)
    assert caught.value.code == code
    assert caught.value.http_status == 422

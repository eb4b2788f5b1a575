"""UidaiOfflineVerifier against self-made files signed exactly as UIDAI signs them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import aadhaar_vectors as vectors
import pytest

from decentro_adapters.aadhaar.offline import IST, UidaiOfflineVerifier
from decentro_core.errors import AadhaarFileRejected

GENERATED = datetime(2025, 3, 1, 15, 30, 0, 123000, tzinfo=IST)
NOW = GENERATED + timedelta(hours=1)


def make_verifier(**options: object) -> UidaiOfflineVerifier:
    options.setdefault("pinned_keys", [vectors.signer().cert_pem()])
    options.setdefault("now", lambda: NOW)
    return UidaiOfflineVerifier(**options)  # type: ignore[arg-type]


def genuine(**fields: object) -> bytes:
    fields.setdefault("generated_at", GENERATED)
    return vectors.signed_xml(**fields)


def rejection(content: bytes, verifier: UidaiOfflineVerifier | None = None) -> AadhaarFileRejected:
    with pytest.raises(AadhaarFileRejected) as caught:
        (verifier or make_verifier()).verify(content, vectors.SHARE_CODE)
    return caught.value


def test_accepts_an_intact_signed_xml_and_returns_the_signed_fields():
    kyc = make_verifier().verify(genuine(), vectors.SHARE_CODE)
    assert kyc.aadhaar_last4 == "1234"
    assert kyc.generated_at == GENERATED
    assert (kyc.name, kyc.date_of_birth, kyc.gender) == ("Asha Testperson", "01-01-1990", "F")
    assert kyc.address == vectors.ADDRESS
    assert kyc.photo_base64 == vectors.PHOTO
    assert kyc.signer and kyc.signer.startswith("key-")
    assert (kyc.mobile_verified, kyc.email_verified) == (None, None)


def test_accepts_the_same_file_inside_a_share_code_zip():
    archive = vectors.zip_file(genuine(), vectors.SHARE_CODE)
    assert make_verifier().verify(archive, vectors.SHARE_CODE).name == "Asha Testperson"


def test_accepts_an_older_file_without_an_embedded_certificate():
    assert make_verifier().verify(genuine(embed_cert=False), vectors.SHARE_CODE).aadhaar_last4 == "1234"


def test_reads_the_generation_time_from_reference_id_as_india_time():
    kyc = make_verifier().verify(genuine(), vectors.SHARE_CODE)
    assert kyc.generated_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert kyc.generated_at.isoformat() == "2025-03-01T15:30:00.123000+05:30"


@pytest.mark.parametrize(
    ("original", "forged"),
    [
        (b'name="Asha Testperson"', b'name="Asha Testpersom"'),
        (b'dob="01-01-1990"', b'dob="01-01-1980"'),
        (b'gender="F"', b'gender="M"'),
        (b'vtc="Sampleville"', b'vtc="Otherville"'),
        (b'referenceId="1234', b'referenceId="9234'),
        (b"<Pht>/9j/", b"<Pht>/8j/"),
    ],
)
def test_rejects_a_file_with_one_signed_value_changed(original, forged):
    content = genuine()
    assert original in content
    error = rejection(content.replace(original, forged, 1))
    assert error.code == "AADHAAR_SIGNATURE_INVALID"


def test_rejects_a_file_signed_by_another_key():
    error = rejection(genuine(by=vectors.signer("other-authority")))
    assert error.code == "AADHAAR_SIGNATURE_INVALID"
    assert "trusted UIDAI key" in error.message


def test_rejects_a_file_whose_signature_was_removed():
    error = rejection(vectors.unsigned_xml(generated_at=GENERATED))
    assert error.code == "AADHAAR_SIGNATURE_MISSING"


def test_rejects_an_attacker_signature_even_with_the_attackers_certificate_embedded():
    forged = genuine(by=vectors.signer("attacker"), embed_cert=True, name="Mallory Forger")
    assert b"<X509Certificate>" in forged
    assert rejection(forged).code == "AADHAAR_SIGNATURE_INVALID"


def test_ignores_an_embedded_certificate_and_checks_the_pinned_key_only():
    # KeyInfo is outside the signed data: swapping it for an attacker's certificate
    # neither helps an attacker nor breaks a genuine file.
    attacker_der = re.search(rb"<X509Certificate>([^<]+)<", genuine(by=vectors.signer("attacker")))
    assert attacker_der is not None
    content = re.sub(rb"<X509Certificate>[^<]+<", b"<X509Certificate>" + attacker_der.group(1) + b"<", genuine())
    kyc = make_verifier().verify(content, vectors.SHARE_CODE)
    assert kyc.signer == make_verifier().keys[0].label


@pytest.mark.parametrize("signature_first", [False, True])
def test_returns_only_signed_data_when_unsigned_elements_are_smuggled_into_the_signature(signature_first):
    # The enveloped Signature is not covered by the digest, so content hidden in it keeps
    # the signature valid; it must not reach the caller, even when it comes first in
    # document order (moving the Signature leaves the digested text unchanged).
    smuggled = (
        b'<Object><UidData xmlns=""><Poi dob="02-02-1902" gender="M" name="Mallory Forger"/>'
        b'<Poa vtc="Nowhere"/></UidData></Object></Signature>'
    )
    content = genuine().replace(b"</Signature>", smuggled, 1)
    if signature_first:
        start, end = content.index(b"<Signature"), content.index(b"</Signature>") + len(b"</Signature>")
        signature, content = content[start:end], content[:start] + content[end:]
        after_root_tag = content.index(b">", content.index(b"<OfflinePaperlessKyc")) + 1
        content = content[:after_root_tag] + signature + content[after_root_tag:]
        assert content.index(b"Mallory") < content.index(b"Asha")
    kyc = make_verifier().verify(content, vectors.SHARE_CODE)
    assert kyc.name == "Asha Testperson"
    assert "Mallory" not in repr(kyc) and "Nowhere" not in repr(kyc)


def test_rejects_a_second_signed_copy_of_the_data_placed_before_the_genuine_one():
    second = b"<UidData><Poi dob=\"02-02-1902\" gender=\"M\" name=\"Mallory Forger\"/></UidData>"
    content = genuine().replace(b" <UidData>", second + b" <UidData>", 1)
    assert rejection(content).code == "AADHAAR_SIGNATURE_INVALID"


def test_rejects_a_file_older_than_three_days_and_accepts_one_just_inside():
    assert make_verifier(now=lambda: GENERATED + timedelta(days=3)).verify(genuine(), vectors.SHARE_CODE)
    error = rejection(genuine(), make_verifier(now=lambda: GENERATED + timedelta(days=3, seconds=1)))
    assert error.code == "AADHAAR_FILE_TOO_OLD"


def test_max_age_is_configurable():
    strict = make_verifier(max_age=timedelta(minutes=30))
    assert rejection(genuine(), strict).code == "AADHAAR_FILE_TOO_OLD"


def test_rejects_a_file_from_the_future_beyond_a_small_clock_skew():
    assert make_verifier(now=lambda: GENERATED - timedelta(minutes=4)).verify(genuine(), vectors.SHARE_CODE)
    error = rejection(genuine(), make_verifier(now=lambda: GENERATED - timedelta(minutes=6)))
    assert error.code == "AADHAAR_FILE_FROM_FUTURE"


@pytest.mark.parametrize(
    "reference", ["1234", "12342025030115300012", "1234202503011530001234", "12342025130115300012x", "123420251301153000123"]
)
def test_rejects_a_signed_file_with_a_malformed_reference_id(reference):
    error = rejection(genuine(reference=reference))
    assert error.code == "AADHAAR_REFERENCE_INVALID"


def test_rejects_the_2018_single_element_format_with_a_clear_reason():
    old = b'<?xml version="1.0"?><OfflinePaperlessKyc referenceId="123420180101120000000" s="c2ln"/>'
    error = rejection(old)
    assert error.code == "AADHAAR_FORMAT_UNSUPPORTED"
    assert "2018" in error.message


def test_rejects_xml_that_is_not_an_offline_ekyc_file():
    assert rejection(b"<html><body>hello</body></html>").code == "AADHAAR_FORMAT_UNSUPPORTED"


def test_rejection_messages_carry_no_personal_data():
    cases = [
        genuine().replace(b"Asha", b"Usha"),
        genuine(by=vectors.signer("attacker")),
        vectors.unsigned_xml(generated_at=GENERATED),
    ]
    for content in cases:
        error = rejection(content)
        shown = f"{error} {error!r} {error.to_dict()}"
        for personal in ("Asha", "Usha", "1234", "01-01-1990", "Sampleville", vectors.SHARE_CODE):
            assert personal not in shown
    too_old = rejection(genuine(), make_verifier(now=lambda: GENERATED + timedelta(days=9)))
    assert "1234" not in str(too_old) and "2025" not in str(too_old)

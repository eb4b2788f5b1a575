"""Pinned UIDAI keys, operator keys from settings, and the mobile/e-mail hash scheme."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import aadhaar_vectors as vectors
import pytest
from cryptography.hazmat.primitives import serialization

from decentro_adapters.aadhaar import keys as aadhaar_keys
from decentro_adapters.aadhaar.offline import IST, UidaiOfflineVerifier, contact_hash
from decentro_core.errors import AadhaarFileRejected, ConfigurationError
from decentro_core.settings import Settings

GENERATED = datetime(2025, 3, 1, 15, 30, tzinfo=IST)
UIDAI_DIR = Path(aadhaar_keys.__file__).parent / "uidai"

# Copied from AADHAAR.md, not from the adapter, so a drift in either is caught.
AADHAAR_MD_FINGERPRINTS = {
    "uidai_offline_publickey_26022021.cer": "e0f0f869d32efc7e80fae2223717a56dcf8b616f820b542a49e5bd5abf1c0f7d",
    "uidai_offline_2024-2026_ds05.pub.pem": "91ddf442fcce4ff0fedce529e101e9ce0d7ebbb6f046246c265fce2c6a6f48ba",
    "uidai_offline_2026-2029_ds06.pub.pem": "5e74a86a0ce6ff94ce3ac0d6acf8489906bcaada00e1a412bf737190919bcab1",
}


def at(now: datetime):
    return lambda: now


# -- shipped and operator keys --------------------------------------------------------------


def test_the_shipped_uidai_files_match_the_fingerprints_in_aadhaar_md():
    from cryptography import x509

    for name, expected in AADHAAR_MD_FINGERPRINTS.items():
        data = (UIDAI_DIR / name).read_bytes()
        if name.endswith(".cer"):
            covered = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        else:
            covered = serialization.load_pem_public_key(data).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        assert hashlib.sha256(covered).hexdigest() == expected
        assert aadhaar_keys.SHIPPED_KEYS[name][1] == expected


def test_a_default_verifier_pins_the_three_shipped_uidai_keys():
    labels = [key.label for key in UidaiOfflineVerifier().keys]
    assert labels == ["uidai-ds05-2021", "uidai-ds05-2024", "uidai-ds06-2026"]


def test_refuses_to_load_a_shipped_key_whose_fingerprint_differs(monkeypatch):
    name = "uidai_offline_2026-2029_ds06.pub.pem"
    kind, _, label = aadhaar_keys.SHIPPED_KEYS[name]
    monkeypatch.setitem(aadhaar_keys.SHIPPED_KEYS, name, (kind, "0" * 64, label))
    with pytest.raises(ConfigurationError, match="fingerprint"):
        UidaiOfflineVerifier()


def test_production_keys_do_not_trust_a_self_made_signature():
    verifier = UidaiOfflineVerifier(now=at(GENERATED))
    with pytest.raises(AadhaarFileRejected) as caught:
        verifier.verify(vectors.signed_xml(generated_at=GENERATED), vectors.SHARE_CODE)
    assert caught.value.code == "AADHAAR_SIGNATURE_INVALID"


def test_an_operator_certificate_from_decentro_uidai_cert_is_trusted_next_to_the_shipped_keys(tmp_path):
    cert_path = tmp_path / "uidai_next.cer"
    cert_path.write_bytes(vectors.signer().cert_pem())
    settings = Settings.from_mapping({"DECENTRO_UIDAI_CERT": f" {cert_path} , "})
    verifier = UidaiOfflineVerifier.from_settings(settings, now=at(GENERATED))
    assert len(verifier.keys) == 4
    kyc = verifier.verify(vectors.signed_xml(generated_at=GENERATED), vectors.SHARE_CODE)
    assert kyc.signer == "uidai_next.cer"


@pytest.mark.parametrize("form", ["der-cert", "pem-key", "der-key"])
def test_accepts_extra_keys_as_bytes_in_any_common_form(form):
    signer = vectors.signer()
    key = signer.key.public_key()
    data = {
        "der-cert": signer.cert.public_bytes(serialization.Encoding.DER),
        "pem-key": signer.public_pem(),
        "der-key": key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    }[form]
    verifier = UidaiOfflineVerifier(pinned_keys=[data], now=at(GENERATED))
    assert verifier.verify(vectors.signed_xml(generated_at=GENERATED), vectors.SHARE_CODE).aadhaar_last4 == "1234"


def test_a_missing_or_unreadable_key_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError):
        UidaiOfflineVerifier(extra_keys=[tmp_path / "absent.cer"])
    junk = tmp_path / "junk.cer"
    junk.write_bytes(b"not a key")
    with pytest.raises(ConfigurationError, match="junk.cer"):
        UidaiOfflineVerifier(extra_keys=[junk])


def test_from_settings_applies_max_age_and_max_bytes():
    settings = Settings.from_mapping(
        {"DECENTRO_AADHAAR_MAX_AGE_HOURS": "1", "DECENTRO_AADHAAR_MAX_BYTES": "2048"}
    )
    verifier = UidaiOfflineVerifier.from_settings(settings, pinned_keys=[vectors.signer().cert_pem()])
    assert (verifier.max_age, verifier.max_bytes) == (timedelta(hours=1), 2048)


# -- mobile and e-mail hashes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mobile", "share_code", "last_digit", "expected"),
    [
        ("1234567890", "Lock@487", 2, "f7250dc9e61759253bb741efbae306311632049154da7286e20b047bf3421a8f"),
        ("1234567890", "Lock@487", 0, "0331ee76a78f1ff400f46c90e1139cf412247a96fd07b9dcf88f8e896981a53f"),
        ("9800000002", "Abc@123", 4, "735c04aebc33a05af444ed41f6352b083c5a28d75ff1a26f0fe2c72bba94d7dc"),
    ],
)
def test_contact_hash_reproduces_the_vectors_in_aadhaar_md(mobile, share_code, last_digit, expected):
    assert contact_hash(mobile, share_code, last_digit) == expected


def verify_contacts(content: bytes, **contacts: str | None):
    verifier = UidaiOfflineVerifier(pinned_keys=[vectors.signer().cert_pem()], now=at(GENERATED))
    return verifier.verify(content, vectors.SHARE_CODE, **contacts)


@pytest.mark.parametrize("last4", ["1234", "5670"])
def test_mobile_and_email_match_the_file_hashes(last4):
    content = vectors.signed_xml(generated_at=GENERATED, last4=last4)
    kyc = verify_contacts(content, mobile=vectors.MOBILE, email=vectors.EMAIL)
    assert (kyc.mobile_verified, kyc.email_verified) == (True, True)
    assert verify_contacts(content, mobile="+91 98000 00002").mobile_verified is True


def test_other_mobile_and_email_do_not_match():
    kyc = verify_contacts(
        vectors.signed_xml(generated_at=GENERATED), mobile="9800000003", email="someone.else@example.com"
    )
    assert (kyc.mobile_verified, kyc.email_verified) == (False, False)


def test_an_email_hashed_with_plain_sha256_also_matches():
    plain = hashlib.sha256(vectors.EMAIL.encode()).hexdigest().upper()
    kyc = verify_contacts(vectors.signed_xml(generated_at=GENERATED, e_hash=plain), email=vectors.EMAIL)
    assert kyc.email_verified is True


def test_contact_checks_are_none_when_not_supplied_or_absent_from_the_file():
    content = vectors.signed_xml(generated_at=GENERATED, mobile=None, email=None)
    kyc = verify_contacts(content, mobile=vectors.MOBILE, email=vectors.EMAIL)
    assert (kyc.mobile_verified, kyc.email_verified) == (None, None)

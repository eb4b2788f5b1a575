"""validate_webhook: HMAC-SHA256 (hex) of the raw body, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from fakes import build

from decentro_core import BlockingDecentroService

SECRET = "whsec-synthetic-1"
BODY = json.dumps({"referenceId": "ref-0001", "transactionStatus": "SUCCESS", "transactionAmount": 10.0},
                  separators=(",", ":")).encode()


def _sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def service() -> BlockingDecentroService:
    return build().service


def test_the_right_hmac_hex_of_the_raw_body_is_valid(service: BlockingDecentroService) -> None:
    assert service.validate_webhook(BODY, _sign(BODY), SECRET) is True


def test_the_body_may_be_given_as_text_or_as_the_mapping_it_serialises(service: BlockingDecentroService) -> None:
    assert service.validate_webhook(BODY.decode(), _sign(BODY), SECRET) is True
    assert service.validate_webhook(json.loads(BODY), _sign(BODY), SECRET) is True  # type: ignore[arg-type]


def test_upper_case_hex_and_a_sha256_prefix_are_accepted(service: BlockingDecentroService) -> None:
    assert service.validate_webhook(BODY, _sign(BODY).upper(), SECRET) is True
    assert service.validate_webhook(BODY, "sha256=" + _sign(BODY), SECRET) is True


def test_a_signature_made_with_another_secret_is_invalid(service: BlockingDecentroService) -> None:
    assert service.validate_webhook(BODY, _sign(BODY, "whsec-someone-else"), SECRET) is False


def test_a_modified_body_is_invalid(service: BlockingDecentroService) -> None:
    tampered = BODY.replace(b"10.0", b"1000.0")
    assert tampered != BODY
    assert service.validate_webhook(tampered, _sign(BODY), SECRET) is False


@pytest.mark.parametrize("signature", [_sign(BODY)[:-1], _sign(BODY)[:32], "", _sign(BODY) + "00"])
def test_a_truncated_extended_or_empty_signature_is_invalid(service: BlockingDecentroService, signature: str) -> None:
    assert service.validate_webhook(BODY, signature, SECRET) is False


def test_an_empty_secret_never_validates(service: BlockingDecentroService) -> None:
    assert service.validate_webhook(BODY, _sign(BODY, ""), "") is False

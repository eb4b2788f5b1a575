"""Hostile containers: wrong share codes, ZIP bombs, XXE, billion laughs, oversized input."""

from __future__ import annotations

import logging
import tracemalloc
import zipfile
from datetime import datetime, timedelta

import aadhaar_vectors as vectors
import pytest

from decentro_adapters.aadhaar import offline as aadhaar_offline
from decentro_adapters.aadhaar.offline import IST, UidaiOfflineVerifier
from decentro_core.errors import AadhaarFileRejected

GENERATED = datetime(2025, 3, 1, 15, 30, tzinfo=IST)


def make_verifier(**options: object) -> UidaiOfflineVerifier:
    return UidaiOfflineVerifier(
        pinned_keys=[vectors.signer().cert_pem()], now=lambda: GENERATED + timedelta(hours=1), **options  # type: ignore[arg-type]
    )


def code_of(content: bytes, share_code: str = vectors.SHARE_CODE, **options: object) -> str:
    with pytest.raises(AadhaarFileRejected) as caught:
        make_verifier(**options).verify(content, share_code)
    return caught.value.code


def test_rejects_every_wrong_share_code_with_a_clear_reason():
    archive = vectors.zip_file(vectors.signed_xml(generated_at=GENERATED), vectors.SHARE_CODE)
    # Twenty codes: some pass ZipCrypto's one-byte check and fail later; all must be refused.
    for wrong in [None, "", "lock@487", *(f"{n:04d}" for n in range(17))]:
        with pytest.raises(AadhaarFileRejected) as caught:
            make_verifier().verify(archive, wrong)  # type: ignore[arg-type]
        assert caught.value.code == "AADHAAR_SHARE_CODE_WRONG"
        assert "share code" in caught.value.message


def test_accepts_a_four_digit_share_code():
    content = vectors.signed_xml(generated_at=GENERATED, share_code="4821", mobile=vectors.MOBILE)
    kyc = make_verifier().verify(vectors.zip_file(content, "4821"), "4821", mobile=vectors.MOBILE)
    assert kyc.mobile_verified is True


def test_rejects_a_zip_holding_more_than_one_entry():
    archive = vectors.zip_file(vectors.signed_xml(generated_at=GENERATED), vectors.SHARE_CODE, extra_entries=1)
    assert code_of(archive) == "AADHAAR_FORMAT_UNSUPPORTED"


def test_rejects_a_zip_with_many_entries_before_zipfile_reads_its_directory(monkeypatch):
    archive = vectors.zip_file(b"<x/>", vectors.SHARE_CODE, extra_entries=500)

    def must_not_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("zipfile parsed a 500-entry directory")

    monkeypatch.setattr(zipfile, "ZipFile", must_not_open)
    assert code_of(archive) == "AADHAAR_FORMAT_UNSUPPORTED"


def test_rejects_a_zip_whose_entry_is_not_xml():
    archive = vectors.zip_file(b"hello", vectors.SHARE_CODE, name="photo.jpg")
    assert code_of(archive) == "AADHAAR_FORMAT_UNSUPPORTED"


def test_rejects_a_damaged_zip():
    assert code_of(b"PK\x03\x04" + b"\x00" * 200) == "AADHAAR_ZIP_INVALID"


def test_rejects_a_zip_bomb_by_its_declared_size():
    bomb = vectors.zip_file(b"\x00" * (8 * 1024 * 1024), vectors.SHARE_CODE, name="bomb.xml")
    assert len(bomb) < 64 * 1024
    assert code_of(bomb, max_bytes=64 * 1024) == "AADHAAR_FILE_TOO_LARGE"


@pytest.mark.parametrize("share_code", [None, vectors.SHARE_CODE])
def test_rejects_a_zip_bomb_that_lies_about_its_size_without_inflating_it(share_code):
    bomb = vectors.zip_file(b"\x00" * (32 * 1024 * 1024), share_code, name="bomb.xml", declared_size=60 * 1024)
    tracemalloc.start()
    try:
        code = code_of(bomb, max_bytes=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code in {"AADHAAR_ZIP_INVALID", "AADHAAR_SHARE_CODE_WRONG", "AADHAAR_FILE_TOO_LARGE"}
    assert peak < 4 * 1024 * 1024  # the 32 MiB entry was never inflated


def test_rejects_oversized_input_before_parsing_it(monkeypatch):
    def must_not_parse(xml: bytes, limits: object) -> None:
        raise AssertionError("parsed an oversized file")

    monkeypatch.setattr(aadhaar_offline, "parse_xml", must_not_parse)
    content = vectors.signed_xml(generated_at=GENERATED)
    assert code_of(content, max_bytes=len(content) - 1) == "AADHAAR_FILE_TOO_LARGE"


def test_refuses_an_external_entity_without_reading_the_file(tmp_path, caplog):
    marker = "XXE-MARKER-7f3a"
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE OfflinePaperlessKyc [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<OfflinePaperlessKyc referenceId="123420250301153000000"><UidData>'
        '<Poi dob="01-01-1990" gender="F" name="&x;"/><Poa/></UidData></OfflinePaperlessKyc>'
    ).encode()
    caplog.set_level(logging.DEBUG)
    for content in (xxe, vectors.zip_file(xxe, vectors.SHARE_CODE)):
        with pytest.raises(AadhaarFileRejected) as caught:
            make_verifier().verify(content, vectors.SHARE_CODE)
        error = caught.value
        assert error.code == "AADHAAR_XML_UNSAFE"
        assert marker not in f"{error} {error!r} {error.to_dict()} {error.__cause__!r} {error.__context__!r}"
    assert marker not in caplog.text


def test_refuses_an_external_dtd_reference(tmp_path):
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY x "boom">')
    content = f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "file://{dtd}"><OfflinePaperlessKyc/>'.encode()
    assert code_of(content) == "AADHAAR_XML_UNSAFE"


def test_refuses_billion_laughs_without_expanding_it():
    entities = ['<!ENTITY lol0 "lollollollollollollollollollol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(entities)}]>'
        "<OfflinePaperlessKyc><UidData><Poi name=\"&lol9;\"/></UidData></OfflinePaperlessKyc>"
    ).encode()
    tracemalloc.start()
    try:
        code = code_of(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == "AADHAAR_XML_UNSAFE"
    assert peak < 4 * 1024 * 1024  # 10**9 "lol"s would need gigabytes


def test_refuses_a_deeply_nested_document():
    content = b"<OfflinePaperlessKyc>" + b"<a>" * 200 + b"</a>" * 200 + b"</OfflinePaperlessKyc>"
    assert code_of(content) == "AADHAAR_XML_UNSAFE"


@pytest.mark.parametrize("content", [b"", b"not xml at all", b"<OfflinePaperlessKyc>", b"\xff\xfe\x00<"])
def test_rejects_bytes_that_are_neither_zip_nor_xml(content):
    assert code_of(content) == "AADHAAR_XML_MALFORMED"

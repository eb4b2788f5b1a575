"""Hostile XML is refused while it streams, before a tree or any signature work; genuine-size
files still verify. Functional assertions only: the costs are measured in bench/."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timedelta

import aadhaar_vectors as vectors
import pytest

from decentro_adapters.aadhaar import offline as aadhaar_offline
from decentro_adapters.aadhaar.offline import DEFAULT_MAX_BYTES, IST, UidaiOfflineVerifier
from decentro_adapters.aadhaar.parsing import CHUNK, DEFAULT_LIMITS, XmlLimits, parse_xml
from decentro_core.errors import AadhaarFileRejected

GENERATED = datetime(2025, 3, 1, 15, 30, tzinfo=IST)
BIG = 5 * 1024 * 1024  # the old default cap: these files must be refused by shape, not by size
HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<OfflinePaperlessKyc referenceId="123420250301153000000">'
TAIL = b"</OfflinePaperlessKyc>"
SIGNATURE = b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>'


def uidai_shaped(body: bytes) -> bytes:
    """``body`` inside ``UidData``, with a (bogus) signature: only a limit can stop it early."""
    return HEAD + b"<UidData>" + body + b"</UidData>" + SIGNATURE + TAIL


def make_verifier(**options: object) -> UidaiOfflineVerifier:
    options.setdefault("pinned_keys", [vectors.signer().cert_pem()])
    options.setdefault("now", lambda: GENERATED + timedelta(hours=1))
    return UidaiOfflineVerifier(**options)  # type: ignore[arg-type]


def refusal(content: bytes, share_code: str = vectors.SHARE_CODE, **options: object) -> AadhaarFileRejected:
    with pytest.raises(AadhaarFileRejected) as caught:
        make_verifier(**options).verify(content, share_code)
    return caught.value


def parse_refusal(xml: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> AadhaarFileRejected:
    with pytest.raises(AadhaarFileRejected) as caught:
        parse_xml(xml, limits)
    return caught.value


@pytest.fixture
def no_signature_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object) -> None:
        raise AssertionError("a hostile file reached the signature step")

    monkeypatch.setattr(aadhaar_offline, "verify_signature", must_not_run)


# The files, 5 MB each. Each ends in garbage: had the parser read to the end it
# would say MALFORMED, so UNSAFE proves it stopped at the limit, a few KB in.
HOSTILE = {
    "1.2 M empty elements": (b"<a/>" * 1_200_000, "more elements"),
    "5 MB of nesting": (b"<a>" * 700_000 + b"</a>" * 700_000, "nested deeper"),
    "one 5 MB text node": (b"<Pht>" + b"A" * 5_000_000 + b"</Pht>", "longer than"),
    "one 5 MB attribute": (b'<Poi name="' + b"A" * 5_000_000 + b'"/>', "longer than"),
    "1.2 M comments": (b"<!---->" * 700_000, "more elements"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_refuses_a_5_mb_hostile_file_at_the_first_limit_without_signature_work(name, no_signature_work):
    body, reason = HOSTILE[name]
    content = uidai_shaped(body)[: -len(TAIL)] + b"<<garbage"
    assert 4_500_000 < len(content) < BIG
    error = refusal(content, max_bytes=BIG)
    assert error.code == "AADHAAR_XML_UNSAFE"
    assert reason in error.message


@pytest.mark.parametrize("name", ["1.2 M empty elements", "5 MB of nesting"])
def test_refuses_the_same_files_inside_a_share_code_zip(name, no_signature_work):
    archive = vectors.zip_file(uidai_shaped(HOSTILE[name][0]), vectors.SHARE_CODE)
    assert refusal(archive, max_bytes=BIG).code == "AADHAAR_XML_UNSAFE"


def test_the_limits_sit_exactly_where_they_say():
    limits = XmlLimits(max_nodes=20, max_depth=5, max_text=1000, max_attributes=3)

    def nested(depth: int) -> bytes:
        return b"<a>" * depth + b"</a>" * depth

    assert parse_xml(nested(5), limits).tag == "a"
    assert "nested deeper" in parse_refusal(nested(6), limits).message
    assert len(parse_xml(b"<r>" + b"<b/>" * 19 + b"</r>", limits)) == 19
    assert "more elements" in parse_refusal(b"<r>" + b"<b/>" * 20 + b"</r>", limits).message
    assert parse_xml(b'<r a="1" b="2" c="3"/>', limits).get("c") == "3"
    assert "more attributes" in parse_refusal(b'<r a="1" b="2" c="3" d="4"/>', limits).message
    assert "more attributes" in parse_refusal(b'<r xmlns:p="urn:p" a="1" b="2" c="3"/>', limits).message
    # A stretch without "<" holds the tag's rest ("r>") and the text.
    assert len(parse_xml(b"<r>" + b"A" * 998 + b"</r>", limits).text or "") == 998
    assert "longer than" in parse_refusal(b"<r>" + b"A" * 999 + b"</r>", limits).message


@pytest.mark.parametrize(
    "body",
    [
        b"<![CDATA[" + b"<" * 2000 + b"]]>",  # parsed text full of "<"
        b"<b/><![CDATA[" + b"<" * 2000 + b"]]><b/>",  # the same as a tail
        b"<!--" + b"<" * 2000 + b"-->",
        b"<?pi " + b"<" * 2000 + b"?>",
    ],
)
def test_a_long_text_hidden_behind_angle_brackets_is_still_refused(body):
    limits = XmlLimits(max_text=1000)
    assert "longer than" in parse_refusal(b"<r>" + body + b"</r>", limits).message


def test_counts_comments_and_processing_instructions_as_nodes():
    limits = XmlLimits(max_nodes=10)
    assert "more elements" in parse_refusal(b"<r>" + b"<!--c-->" * 10 + b"</r>", limits).message
    assert "more elements" in parse_refusal(b"<r>" + b"<?p?>" * 10 + b"</r>", limits).message


@pytest.mark.parametrize("offset", range(-9, 2))
def test_refuses_a_doctype_wherever_it_falls_against_a_chunk_boundary(offset):
    # A comment pushes the DOCTYPE so that it straddles the boundary between two chunks.
    padding = CHUNK + offset - len(b"<!---->")
    content = b"<!--" + b"x" * padding + b"-->" + b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'
    assert parse_refusal(content).code == "AADHAAR_XML_UNSAFE"


@pytest.mark.parametrize(
    "content",
    [b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', b'<!DOCTYPE r SYSTEM "file:///etc/hostname"><r/>', b"<!DOCTYPE r><r/>", b"<?p?><!--c--><!DOCTYPE r><r/>"],
)
def test_a_dtd_that_got_past_the_byte_check_is_still_refused(monkeypatch, content):
    from decentro_adapters.aadhaar import parsing

    monkeypatch.setattr(parsing, "_DOCTYPE", b"<!NEVER-SEEN")  # disable the first guard
    assert parse_refusal(content).code == "AADHAAR_XML_UNSAFE"


def test_forces_utf8_so_an_other_encoding_cannot_hide_markup_from_the_byte_checks():
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16")
    assert parse_refusal(utf16).code == "AADHAAR_XML_MALFORMED"
    declared_only = b'<?xml version="1.0" encoding="ISO-8859-1"?><r>caf\xe9</r>'
    assert parse_refusal(declared_only).code == "AADHAAR_XML_MALFORMED"


def test_keeping_the_error_keeps_nothing_of_the_file():
    # The ZIP is small; what it unzips to (4.8 MB) is made inside the verifier. If the error
    # kept a frame or a chained exception holding it, that memory would still be allocated.
    archive = vectors.zip_file(uidai_shaped(b"<a/>" * 1_200_000), vectors.SHARE_CODE)
    verifier = make_verifier(max_bytes=BIG)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(AadhaarFileRejected) as caught:
            verifier.verify(archive, vectors.SHARE_CODE)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    error = caught.value
    assert error.code == "AADHAAR_XML_UNSAFE"
    assert error.__cause__ is None and error.__context__ is None
    assert kept < 512 * 1024


def test_a_genuine_size_file_verifies_under_the_adapters_own_default_cap():
    document = vectors.signed_xml(generated_at=GENERATED, photo=vectors.genuine_size_photo())
    archives = [vectors.zip_file(document, vectors.SHARE_CODE, compress=c) for c in (True, False)]
    assert 30_000 < len(document) < DEFAULT_MAX_BYTES // 3  # a real file is about 20 KB
    verifier = make_verifier()  # max_bytes and xml_limits: the adapter's defaults
    for content in (document, *archives):
        kyc = verifier.verify(content, vectors.SHARE_CODE, mobile=vectors.MOBILE)
        assert (kyc.name, kyc.photo_base64, kyc.mobile_verified) == (
            "Asha Testperson", vectors.genuine_size_photo(), True,
        )


def test_a_genuine_file_sits_well_inside_every_limit():
    document = vectors.signed_xml(generated_at=GENERATED, photo=vectors.genuine_size_photo())
    root = parse_xml(document)
    elements = list(root.iter())
    assert len(elements) * 10 <= DEFAULT_LIMITS.max_nodes
    assert max(len(e.attrib) for e in elements) * 4 <= DEFAULT_LIMITS.max_attributes
    assert max(len(e.text or "") for e in elements) * 3 <= DEFAULT_LIMITS.max_text
    deepest = max(len(list(e.iterancestors())) + 1 for e in elements)
    assert deepest * 2 <= DEFAULT_LIMITS.max_depth


def test_the_signature_step_gets_the_tree_of_the_one_parse(monkeypatch):
    parsed, checked = [], []
    real_parse, real_verify = aadhaar_offline.parse_xml, aadhaar_offline.verify_signature

    def spy_parse(xml: bytes, limits: XmlLimits) -> object:
        parsed.append(real_parse(xml, limits))
        return parsed[-1]

    def spy_verify(root: object, keys: object) -> object:
        checked.append(root)
        return real_verify(root, keys)  # type: ignore[arg-type]

    monkeypatch.setattr(aadhaar_offline, "parse_xml", spy_parse)
    monkeypatch.setattr(aadhaar_offline, "verify_signature", spy_verify)
    kyc = make_verifier().verify(vectors.signed_xml(generated_at=GENERATED), vectors.SHARE_CODE)
    assert kyc.name == "Asha Testperson"
    assert len(parsed) == 1 and len(checked) == 1 and checked[0] is parsed[0]


def test_limits_are_configurable_and_must_be_positive():
    document = vectors.signed_xml(generated_at=GENERATED)
    assert make_verifier().verify(document, vectors.SHARE_CODE).name == "Asha Testperson"
    assert refusal(document, xml_limits=XmlLimits(max_nodes=5)).code == "AADHAAR_XML_UNSAFE"
    with pytest.raises(ValueError):
        XmlLimits(max_depth=0)

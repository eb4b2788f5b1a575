"""The XMLDSig check, configured for exactly what UIDAI signs.

UIDAI signs enveloped, ``Reference URI=""``, RSA-SHA1 over a SHA-256 digest, inclusive C14N
1.0, with ``Signature`` in the default xmldsig namespace. signxml 5 refuses such files
unless told to: SHA-1 must be allowed, certificate dates must not be enforced, and
``excise_empty_xmlns_declarations`` must be on, because lxml's C14N of ``SignedInfo``
under a default-namespace ``Signature`` adds ``xmlns=""`` to its grandchildren
(signxml issues #193/#197) while UIDAI's signer (and libxml2's xmlsec) does not.

The check runs on the tree that :func:`~decentro_adapters.aadhaar.parsing.parse_xml` built
and screened: signxml's own ``get_root`` would serialise and parse the whole file again.
signxml still copies that (screened, UIDAI-sized) tree before its enveloped transform.

The data handed back is signxml's ``signed_xml``: the tree re-parsed from the canonical
bytes that were digested, so nothing outside the signature can be smuggled in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidDigest, InvalidSignature, SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from .errors import SIGNATURE_INVALID, reject
from .keys import CARRIER_CHECK_TIME, PinnedKey
from .parsing import lxml_parser

__all__ = ["UIDAI_SIGNATURE_CONFIG", "verify_signature"]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"

UIDAI_SIGNATURE_CONFIG = SignatureConfiguration(
    # RSA-SHA1 is what UIDAI uses; stronger RSA methods are accepted should UIDAI move on.
    signature_methods=frozenset(
        {SignatureMethod.RSA_SHA1, SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA512}
    ),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA512}),
    location="./",  # a direct child of the root, as UIDAI places it
    expect_references=1,
    # KeyInfo is never consulted: the key comes from the pin, whatever the file embeds.
    ignore_ambiguous_key_info=True,
    verification_time=CARRIER_CHECK_TIME,
    # Without a C14N transform, XMLDSig says the enveloped result is rendered in C14N 1.0.
    default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
)


class _UidaiXMLVerifier(XMLVerifier):
    excise_empty_xmlns_declarations = True

    def get_root(self, data: Any) -> Any:
        """The already parsed and screened tree itself, not a re-parsed copy of it.

        signxml only reads the root it gets here: it copies it before removing the
        signature, so the caller's tree is left as it was.
        """
        if not isinstance(data, etree._Element):
            raise TypeError("verify_signature takes the tree built by parse_xml")
        return data


def verify_signature(root: etree._Element, keys: Sequence[PinnedKey]) -> tuple[etree._Element, PinnedKey]:
    """The signed root and the pinned key that signed it; rejects anything else.

    ``root`` is the tree built by :func:`~decentro_adapters.aadhaar.parsing.parse_xml`.
    """
    for key in keys:
        try:
            result = _UidaiXMLVerifier().verify(
                root, x509_cert=key.carrier, expect_config=UIDAI_SIGNATURE_CONFIG, parser=lxml_parser()
            )
        except InvalidDigest:
            # The key matched SignedInfo, so the content changed after UIDAI signed it.
            raise reject(SIGNATURE_INVALID, "The file was changed after it was signed.") from None
        except InvalidSignature:
            continue
        except (SignXMLException, etree.LxmlError, ValueError, TypeError):
            raise reject(SIGNATURE_INVALID, "The file's signature is malformed.") from None
        return _signed_root(result), key
    raise reject(SIGNATURE_INVALID, "The file is not signed by a trusted UIDAI key.")


def _signed_root(result: object) -> etree._Element:
    signed = getattr(result, "signed_xml", None)
    references = getattr(result, "signature_xml", None)
    uris = [] if references is None else [r.get("URI") for r in references.iter(f"{{{DS_NS}}}Reference")]
    if signed is None or uris != [""] or signed.find(f".//{{{DS_NS}}}Signature") is not None:
        raise reject(SIGNATURE_INVALID, "The signature does not cover the whole file.")
    return signed

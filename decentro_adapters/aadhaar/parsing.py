"""One streaming parse of an offline e-KYC XML, refused at the first sign it is not UIDAI-sized.

The XML is fed to lxml's pull parser in small chunks; after each chunk the new nodes are
counted and their depth, attributes and text checked, so a hostile file is refused after a
few kilobytes of it have been parsed, never after a whole tree was built. A file that
passes becomes the one tree that the layout and signature checks share: nothing parses
the upload a second time.

Checked on raw bytes before lxml sees them: any ``<!DOCTYPE`` (so no DTD, entity or
external reference is ever parsed), and the longest stretch without ``<`` (one text node,
or one tag with its attributes), so a 5 MB text node is refused before it is buffered.
The encoding is forced to UTF-8 (UIDAI's), so those byte checks see what the parser sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from .errors import XML_MALFORMED, XML_UNSAFE, reject

__all__ = ["DEFAULT_LIMITS", "XmlLimits", "lxml_parser", "parse_xml"]

CHUNK = 4 * 1024
"""Bytes fed per step: at most this much past a limit is parsed before the refusal."""

_DOCTYPE = b"<!DOCTYPE"
_EVENTS = ("start", "end", "comment", "pi")


@dataclass(frozen=True)
class XmlLimits:
    """Caps on the shape of the XML, each about ten times what a genuine UIDAI file holds.

    A genuine offline e-KYC file has about 20 elements (``OfflinePaperlessKyc``, ``UidData``,
    ``Poi``, ``Poa``, sometimes ``LData``, ``Pht`` and the 14 of an enveloped XMLDSig
    signature with ``KeyInfo``), nests 6 deep (``Signature/SignedInfo/Reference/Transforms/
    Transform``), carries at most a dozen attributes on one element (``Poa``), and its
    longest text is the photo: base64 of a small JPEG, about 10-15 KB, and the whole file
    about 20 KB.
    """

    max_nodes: int = 256
    """Elements, comments and processing instructions."""
    max_depth: int = 16
    max_text: int = 128 * 1024
    """Bytes without a ``<`` (one text node, or one tag with its attributes); characters in
    one parsed text, comment or processing instruction (which CDATA can fill with ``<``)."""
    max_attributes: int = 64
    """Attributes plus namespace declarations in scope, on one element."""

    def __post_init__(self) -> None:
        if min(self.max_nodes, self.max_depth, self.max_text, self.max_attributes) <= 0:
            raise ValueError("XML limits must be positive")


DEFAULT_LIMITS = XmlLimits()


def lxml_parser() -> etree.XMLParser:
    """A fresh hardened parser (parsers are not shared across threads) for signxml's copies."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False
    )


def parse_xml(xml: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> etree._Element:
    """The root of ``xml``, parsed once, or a rejection (``AADHAAR_XML_UNSAFE`` for a DTD
    or a limit, ``AADHAAR_XML_MALFORMED`` for anything else lxml refuses).

    The rejection is raised here, after the parser and its partial tree are released, and
    carries no chained exception: keeping the error keeps nothing of the file alive.
    """
    outcome = _stream(xml, limits)
    if isinstance(outcome, tuple):
        raise reject(*outcome)
    return outcome


def _stream(xml: bytes, limits: XmlLimits) -> etree._Element | tuple[str, str]:
    """The root, or the (code, message) of the first problem found."""
    parser = etree.XMLPullParser(
        events=_EVENTS,
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
    )
    screen = _Screen(limits)
    step = min(CHUNK, limits.max_text)  # a stretch inside one chunk is then under max_text
    try:
        for start in range(0, len(xml), step):
            chunk = xml[start : start + step]
            problem = screen.raw(chunk) or screen.nodes(_fed(parser, chunk))
            if problem is not None:
                return problem
        root = parser.close()
        problem = screen.nodes(parser.read_events())  # what close() itself completed
    except etree.XMLSyntaxError:
        # libxml2 stops at 256 levels by itself; what was read before that still counts.
        return screen.nodes(parser.read_events()) or _MALFORMED
    return root if problem is None else problem


def _fed(parser: etree.XMLPullParser, chunk: bytes) -> Iterable[tuple[str, Any]]:
    parser.feed(chunk)
    events: Iterable[tuple[str, Any]] = parser.read_events()
    return events


_MALFORMED = (XML_MALFORMED, "The file is neither a ZIP nor well-formed XML.")
_DTD = (XML_UNSAFE, "The XML declares a DTD or entities, which UIDAI files never do.")
_TOO_MANY = (XML_UNSAFE, "The XML has more elements than a UIDAI file can hold.")
_TOO_DEEP = (XML_UNSAFE, "The XML is nested deeper than a UIDAI file can be.")
_TOO_LONG = (XML_UNSAFE, "The XML holds a text or tag longer than a UIDAI file can.")
_TOO_WIDE = (XML_UNSAFE, "The XML has an element with more attributes than a UIDAI file can.")


class _Screen:
    """The running checks of one parse: raw bytes first, then the nodes each chunk made."""

    def __init__(self, limits: XmlLimits) -> None:
        self.limits = limits
        self.tail = b""  # the end of the previous chunk, for a DOCTYPE split across two
        self.stretch = 0  # bytes since the last "<"
        self.count = 0
        self.depth = 0

    def raw(self, chunk: bytes) -> tuple[str, str] | None:
        if _DOCTYPE in self.tail + chunk[: len(_DOCTYPE)] or _DOCTYPE in chunk:
            return _DTD
        self.tail = chunk[-(len(_DOCTYPE) - 1) :]
        first = chunk.find(b"<")
        if first < 0:
            self.stretch += len(chunk)
        else:
            if self.stretch + first > self.limits.max_text:
                return _TOO_LONG
            self.stretch = len(chunk) - chunk.rfind(b"<") - 1
        return _TOO_LONG if self.stretch > self.limits.max_text else None

    def nodes(self, events: Iterable[tuple[str, Any]]) -> tuple[str, str] | None:
        limits = self.limits
        for event, node in events:
            if event == "end":
                self.depth -= 1
                if _longest_text(node) > limits.max_text:
                    return _TOO_LONG  # text with "<" in it: CDATA
                continue
            self.count += 1
            if self.count > limits.max_nodes:
                return _TOO_MANY
            if event == "start":
                if self.depth == 0 and _declares_a_dtd(node):
                    return _DTD
                self.depth += 1
                if self.depth > limits.max_depth:
                    return _TOO_DEEP
                if len(node.attrib) + len(node.nsmap) > limits.max_attributes:
                    return _TOO_WIDE
            elif len(node.text or "") > limits.max_text:
                return _TOO_LONG  # a comment or processing instruction with "<" in it
        return None


def _declares_a_dtd(root: etree._Element) -> bool:
    """A second guard behind the byte check, read when the root starts (the DTD, if any,
    has been parsed by then, though none of its entities expanded)."""
    info = root.getroottree().docinfo
    return bool(info.doctype) or info.internalDTD is not None or info.externalDTD is not None


def _longest_text(element: etree._Element) -> int:
    """The longest of an ended element's text and its children's tails (all complete now)."""
    texts = [element.text or "", *((child.tail or "") for child in element)]
    return max(len(text) for text in texts)

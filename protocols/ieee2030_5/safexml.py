"""Hardened XML parsing: no DTD, no entities, no network, bounded size; the root must be in the 2030.5 namespace.

Servers are trusted only as far as their TLS certificate: a compromised or buggy one must not be able to exhaust
memory (entity expansion), read local files (external entities) or make the gateway fetch URLs.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from protocols.ieee2030_5.errors import InputError

NS = "urn:ieee:std:2030.5:ns"
CSIPAUS_NS = "https://csipaus.org/ns"
#: Documents larger than this are refused before parsing (a full DERControlList page is a few tens of kB).
MAX_DOCUMENT_BYTES = 1_000_000
#: lxml elements, untyped (lxml ships no stubs).
Element = Any


def _parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse(data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Element:
    """Parse one 2030.5 document and return its root element, or raise InputError with a precise code."""
    if len(data) > max_bytes:
        raise InputError("xml.too_large", f"document of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError("xml.doctype", "document carries a DOCTYPE or ENTITY declaration; refused")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise InputError("xml.malformed", f"malformed XML: {exc}") from None
    if root is None:
        raise InputError("xml.malformed", "empty document")
    if root.getroottree().docinfo.doctype:
        raise InputError("xml.doctype", "document carries a DOCTYPE; refused")
    if etree.QName(root).namespace != NS:
        raise InputError("xml.namespace", f"root element {root.tag} is not in the IEEE 2030.5 namespace {NS}")
    return root


def serialize(root: Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=False, encoding="utf-8"))

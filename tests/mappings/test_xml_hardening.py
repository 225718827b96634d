"""The hardened parser factory and the streaming helper of mappings.xml."""

from __future__ import annotations

import io

import pytest
from lxml import etree

from mappings.errors import XmlLimitError, XmlSecurityError, XmlSyntaxError
from mappings.xml import XmlLimits, inspect_prolog, iter_elements, open_stream, parse_document, secure_parser


def test_secure_parser_never_resolves_entities_even_if_doctype_slips_through() -> None:
    doc = b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY y "yyy">]><d>&x;&y;</d>'
    root = etree.fromstring(doc, secure_parser())
    assert "root:" not in etree.tostring(root).decode()
    assert root.text is None and all(isinstance(c, etree._Entity) for c in root)


def test_parse_document_refuses_doctype_before_parsing() -> None:
    with pytest.raises(XmlSecurityError) as info:
        parse_document(b'<?xml version="1.0"?><!DOCTYPE d><d/>', source="d.xml")
    assert info.value.code == "doctype_forbidden" and info.value.source == "d.xml"


def test_prolog_finds_root_namespace_with_prefix_and_comments() -> None:
    head = b'<?xml version="1.0"?>\n<!-- c --><?pi x?><ns2:Document xmlns:ns2="urn:x" xmlns="urn:y">'
    p = inspect_prolog(head, source="h")
    assert (p.root_local, p.namespace) == ("Document", "urn:x")


@pytest.mark.parametrize(("limits", "doc", "code"), [
    (XmlLimits(max_depth=3), b"<a><b><c><d/></c></b></a>", "too_deep"),
    (XmlLimits(max_text=5), b"<a>123456</a>", "text_too_long"),
    (XmlLimits(max_bytes=10), b"<a>123456</a>", "too_large"),
])
def test_limits(limits: XmlLimits, doc: bytes, code: str) -> None:
    with pytest.raises(XmlLimitError) as info:
        parse_document(doc, source="l.xml", limits=limits)
    assert info.value.code == code


def test_iter_elements_clears_what_it_yielded() -> None:
    doc = b"<r>" + b"".join(b"<e><v>%d</v></e>" % i for i in range(100)) + b"</r>"
    _, reader = open_stream(io.BytesIO(doc), source="s.xml")
    seen = []
    for el in iter_elements(reader, ("e",), source="s.xml"):
        seen.append(el.findtext("v"))
        prev = el.getprevious()  # the one before is a cleared shell, all earlier ones are gone
        assert prev is None or (len(prev) == 0 and prev.text is None and prev.getprevious() is None)
    assert seen == [str(i) for i in range(100)]


def test_iter_elements_reports_truncation_with_line() -> None:
    _, reader = open_stream(b"<r>\n<e>1</e>\n<e>2", source="t.xml")
    with pytest.raises(XmlSyntaxError) as info:
        list(iter_elements(reader, ("e",), source="t.xml"))
    assert info.value.code == "truncated" and info.value.line == 3

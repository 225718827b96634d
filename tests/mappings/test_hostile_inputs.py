"""The hostile-input corpus: every file must fail with its own specific error, quickly, never hang or crash.

tests/mappings/hostile/MANIFEST.json names, per file, the mapping it is fed to and the error code
it must produce (regenerate the corpus with tests/mappings/hostile/regenerate.py). Each case runs
under a generous pytest-timeout: the assertion is that it finishes with the right error, not how fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings.errors import MappingError
from mappings.pain002 import parse_pain002
from mappings.payables import parse_srm_payables
from mappings.statements import iter_statements
from mappings.xml import XmlLimits, parse_document

HERE = Path(__file__).resolve().parent / "hostile"
MANIFEST: dict[str, dict[str, object]] = json.loads((HERE / "MANIFEST.json").read_text("utf-8"))


def _feed(name: str, spec: dict[str, object]) -> None:
    data = (HERE / name).read_bytes()
    kind = spec["kind"]
    if kind == "statement":
        last = dict(spec.get("last_sequences", {}))  # type: ignore[call-overload]
        profile = spec.get("profile")
        with (HERE / name).open("rb") as fh:
            for reader in iter_statements(fh, source=name, profile=profile,  # type: ignore[arg-type]
                                          last_sequences=last):
                reader.drain()
    elif kind == "pain002":
        parse_pain002(data, source=name)
    elif kind == "srm":
        parse_srm_payables(data, source=name)
    else:
        raise AssertionError(kind)


def test_corpus_is_large_enough() -> None:
    assert len(MANIFEST) >= 30
    assert all((HERE / name).exists() for name in MANIFEST)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_hostile_file_gets_its_specific_error(name: str) -> None:
    spec = MANIFEST[name]
    with pytest.raises(MappingError) as info:
        _feed(name, spec)
    err = info.value
    assert err.code == spec["code"], f"{name}: got {err!r}"
    assert err.source == name, "the error must name the file"
    assert str(err).startswith(name)


@pytest.mark.timeout(60)
def test_document_size_limit_is_enforced() -> None:
    data = (HERE.parent / "samples" / "pain002" / "pain002_v03_partial.xml").read_bytes()
    with pytest.raises(MappingError) as info:
        parse_document(data, source="big.xml", limits=XmlLimits(max_bytes=1000))
    assert info.value.code == "too_large"


@pytest.mark.timeout(60)
def test_streaming_size_limit_is_enforced() -> None:
    from mappings.camt import iter_camt_items

    data = (HERE.parent / "samples" / "camt" / "camt053_v08_cny_full.xml").read_bytes()
    with pytest.raises(MappingError) as info:
        list(iter_camt_items(data, source="big.xml", limits=XmlLimits(max_bytes=4096, max_prolog=1024)))
    assert info.value.code == "too_large"


def test_xxe_never_reads_the_file() -> None:
    """Even with checks off, the DOCTYPE refusal comes first: no entity is ever resolved."""
    with pytest.raises(MappingError) as info:
        list(iter_statements((HERE / "xxe_local_file.xml").read_bytes(), source="x.xml", verify=False))
    assert "root:" not in str(info.value)
    assert info.value.code == "doctype_forbidden"


@pytest.mark.timeout(60)
def test_one_giant_entry_is_stopped_while_it_is_being_read() -> None:
    """A single entry with 20,000 TxDtls (~2 MB) against a 256 KiB per-element budget: the parser
    stops inside the entry instead of building its whole tree."""
    from mappings.camt import iter_camt_items

    good = (HERE.parent / "samples" / "camt" / "camt054_v02_notification.xml").read_bytes()
    tx = good[good.index(b"<TxDtls>"): good.index(b"</TxDtls>") + len(b"</TxDtls>")]
    data = good.replace(tx, tx * 20_000)
    with pytest.raises(MappingError) as info:
        list(iter_camt_items(data, source="giant.xml", limits=XmlLimits(max_element_bytes=256 * 1024)))
    assert info.value.code == "element_too_large"
    assert list(iter_camt_items(good, source="ok.xml", limits=XmlLimits(max_element_bytes=256 * 1024)))

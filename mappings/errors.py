"""The errors every mapping raises: one root, specific subclasses, each naming where and what.

A ``MappingError`` carries a machine-readable ``code`` plus the ``source`` (file name or archive
ref the caller passed), the ``line`` (line or record number) or ``xpath``, and the ``field``, so an
operator can find the byte that is wrong. Batch formats do not raise these for one bad record:
they return ``ledger.canonical.RejectedRecord`` data instead (see ``mappings.batch``).
This module must never import anything but the standard library.
"""

from __future__ import annotations


class MappingError(ValueError):
    """Root of all mapping errors. ``code`` is stable and machine-readable."""

    code = "mapping_error"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        xpath: str | None = None,
        field: str | None = None,
        code: str | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message
        self.source = source
        self.line = line
        self.xpath = xpath
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.source or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        if self.xpath:
            where += f" {self.xpath}"
        what = f" field {self.field}:" if self.field else ""
        return f"{where}:{what} {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, object]:
        """The error as data (CLI output, quarantine reasons, expected-output files)."""
        return {
            "error": type(self).__name__,
            "code": self.code,
            "source": self.source,
            "line": self.line,
            "xpath": self.xpath,
            "field": self.field,
            "message": self.message,
        }


# --- hostile or broken XML ---------------------------------------------------------------------

class XmlSecurityError(MappingError):
    """The document tries something a hardened parser refuses (DOCTYPE, entities, ...)."""

    code = "xml_forbidden"


class XmlLimitError(MappingError):
    """A size, depth or text-length limit is exceeded (too_large / too_deep / text_too_long)."""

    code = "xml_limit"


class XmlSyntaxError(MappingError):
    """Not well-formed XML: truncated, broken tags, bad encoding (``malformed_xml``/``bad_encoding``)."""

    code = "malformed_xml"


class UnsupportedFormat(MappingError):
    """Not a format/version this mapping accepts (``unknown_format``, ``wrong_namespace``)."""

    code = "unknown_format"


# --- bad content -------------------------------------------------------------------------------

class FieldError(MappingError):
    """A field is missing, malformed, over-precise, or in the wrong currency."""

    code = "invalid_field"


class StatementCheckError(MappingError):
    """A statement parsed but failed an acceptance check."""

    code = "statement_check"


class BalanceMismatch(StatementCheckError):
    """Opening balance + entries != closing balance."""

    code = "balance_mismatch"


class SummaryMismatch(StatementCheckError):
    """The statement's own totals (camt TxsSummry, MT940 counts) disagree with its entries."""

    code = "summary_mismatch"


class SequenceGap(StatementCheckError):
    """The statement's sequence number skips numbers after the account's last known one."""

    code = "sequence_gap"


class SequenceRepeat(StatementCheckError):
    """The statement's sequence number is the account's last known one or older (a repeat)."""

    code = "sequence_repeat"


class RenderError(MappingError):
    """Canonical data that cannot be rendered into the external format (or fails its schema)."""

    code = "render_error"

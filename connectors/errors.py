"""One error hierarchy for every connector, classified by what the caller should do.

- ``RetriableError``: try again later, the same request is safe to repeat (timeouts before
  anything was sent, 5xx, 429, dropped connections on reads, a read past its deadline); a
  listing that hit its per-run bound (``PaginationLimit``) resumes from the saved cursor.
- ``FatalError``: do not retry; a person or a fix is needed (4xx, SOAP faults, validation,
  configuration, host key refusal).
- ``OutcomeUnknown``: a state-changing request (payment, financing, registration) may or may not
  have taken effect. Never resend blindly: query by the original serial number first, then resend
  under the same serial only if the query says it was not received.

Every error names the system, the operation and the id (serial number, file name, message id)
it concerns. Messages never contain secrets.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of all connector errors."""

    retriable: bool = False

    def __init__(self, message: str, *, system: str, operation: str, ref: str | None = None) -> None:
        self.message = message
        self.system = system
        self.operation = operation
        self.ref = ref
        where = f"{system}.{operation}" + (f" [{ref}]" if ref else "")
        super().__init__(f"{where}: {message}")


class RetriableError(ConnectorError):
    retriable = True


class FatalError(ConnectorError):
    retriable = False


class ConnectorTimeout(RetriableError):
    """No answer in time, for a request that is safe to repeat (a read or a query)."""


class DeadlineExceeded(ConnectorTimeout):
    """The call's total deadline (connect + send + the whole answer) passed before it finished,
    for a call that is safe to repeat. A state-changing call that may have been applied raises
    ``OutcomeUnknown`` instead (its ``deadline`` attribute is set)."""

    def __init__(self, message: str, *, deadline: float, **kw: str | None) -> None:
        self.deadline = deadline
        super().__init__(message, **kw)  # type: ignore[arg-type]


class PaginationLimit(RetriableError):
    """A listing reached its per-run bound (``pages`` or ``records``) before the server said it
    was done. Everything delivered so far is good; ``cursor`` is where the next run resumes
    (persist the cursor of the last page processed, as after any page). Retrying the same run
    from the same start would hit the same bound: resume from the saved cursor instead."""

    def __init__(self, message: str, *, pages: int, records: int, cursor: str | None,
                 **kw: str | None) -> None:
        self.pages = pages
        self.records = records
        self.cursor = cursor
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ConnectionDropped(RetriableError):
    """The connection failed or was reset before a complete answer arrived."""


class ServerError(RetriableError):
    """HTTP 5xx (or equivalent) from the remote system."""

    def __init__(self, message: str, *, status: int, **kw: str | None) -> None:
        self.status = status
        super().__init__(message, **kw)  # type: ignore[arg-type]


class RateLimited(RetriableError):
    """HTTP 429; ``retry_after`` seconds when the server said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str | None) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class OutcomeUnknown(ConnectorError):
    """A state-changing request was sent and no usable answer came back (lost, cut off, past the
    deadline, unreadable): resolve by query, not by resend. ``deadline`` is set (seconds) when the
    call's deadline is what ended it."""

    retriable = False

    def __init__(self, message: str, *, deadline: float | None = None, **kw: str | None) -> None:
        self.deadline = deadline
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ClientError(FatalError):
    """HTTP 4xx other than 429: the request itself is wrong."""

    def __init__(self, message: str, *, status: int, **kw: str | None) -> None:
        self.status = status
        super().__init__(message, **kw)  # type: ignore[arg-type]


class SoapFault(FatalError):
    """A SOAP fault: ``code`` (faultcode / Code/Value) and ``detail`` (text of the detail element)."""

    def __init__(self, message: str, *, code: str, detail: str | None = None, **kw: str | None) -> None:
        self.code = code
        self.detail = detail
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ValidationFailed(FatalError):
    """A request or response did not match the contract (XSD, OpenAPI, file format)."""


class ConfigurationError(FatalError):
    """The connector's settings are incomplete or contradictory."""


class HostKeyRefused(FatalError):
    """SFTP server presented an unknown or changed host key; never auto-accepted."""


class IntegrityError(FatalError):
    """A transferred file's size or SHA-256 did not match what was expected."""


class NotFound(FatalError):
    """The remote system does not know the requested id (e.g. a serial number queried)."""

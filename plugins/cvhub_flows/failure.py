"""How a flow step fails: retry what is retriable, fail at once (with the reason) what is not.

Every task body in ``dags/`` runs inside ``flow_step(name)``:
- a ``connectors.errors.RetriableError`` (timeout, 5xx, 429, dropped connection) propagates
  unchanged, so Airflow retries the task with its exponential backoff;
- anything else — a ``FatalError`` (4xx, SOAP fault, validation, host key refused), an
  ``OutcomeUnknown`` that the connector could not resolve by query, or a bug — becomes an
  ``AirflowFailException`` carrying the reason, so the task fails at once without retries.

Item-level failures never get here: a flow quarantines a bad item and carries on with the rest.
The last failures of this process are kept (``failures_since(mark)``) so the in-process runner can
report the reason next to the failed task ids. Never logs or keeps secrets: connector errors are
built without them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from connectors.errors import RetriableError

_recent: deque[tuple[int, str]] = deque(maxlen=200)
_count = [0]


def failure_mark() -> int:
    """How many step failures this process has seen so far (pass it to ``failures_since``)."""
    return _count[0]


def failures_since(mark: int) -> list[str]:
    """The reasons of the step failures after ``mark`` (the latest 200 at most), oldest first."""
    return [text for n, text in _recent if n > mark]


def is_retriable(exc: BaseException) -> bool:
    return isinstance(exc, RetriableError | TimeoutError | ConnectionError)


_timings: deque[tuple[str, float]] = deque(maxlen=100_000)


def step_timings(*, clear: bool = False) -> list[tuple[str, float]]:
    """(step name, seconds) of every step run in this process (the benchmark's in-flow time)."""
    out = list(_timings)
    if clear:
        _timings.clear()
    return out


@contextmanager
def flow_step(name: str) -> Iterator[None]:
    """Classify a failure inside a task body (see the module docstring); time the step."""
    start = time.perf_counter()
    try:
        yield
    except (AirflowFailException, AirflowSkipException):
        raise
    except Exception as e:
        reason = f"{name}: {type(e).__name__}: {e}"
        _count[0] += 1
        _recent.append((_count[0], ("retriable " if is_retriable(e) else "fatal ") + reason))
        if is_retriable(e):
            raise
        raise AirflowFailException(reason) from e
    finally:
        _timings.append((name, time.perf_counter() - start))

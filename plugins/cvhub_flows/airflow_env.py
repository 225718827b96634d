"""Airflow on this machine: an AIRFLOW_HOME under the cvhub data directory, and a DAG runner.

``configure_airflow(home)`` points Airflow at the repository's ``dags/`` and ``plugins/`` folders, an
SQLite metadata database inside ``home`` and no example DAGs. It writes Airflow's own ``AIRFLOW_*``
environment variables (Airflow reads its configuration from them when it is first imported, so this
must run before anything imports ``airflow``); it never reads cvhub configuration from the
environment (that is ``cvhub.settings``). ``migrate_metadata_db()`` is ``airflow db migrate``,
done once per home (a stamp file records the Airflow version it was migrated with).
``run_dag(dag_id, ...)`` runs one DAG run in this process with ``dag.test()`` and reports the
state of every task instance.

This module must never hold secrets or connection details: those are ``AIRFLOW_CONN_*`` values or
a secrets backend, resolved only by the hooks in ``plugins.cvhub_flows.hooks``.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
PLUGINS_FOLDER = REPO_ROOT / "plugins"

# Process-wide state: which home Airflow was pointed at, and the parsed DagBag.
_state: dict[str, Any] = {"home": None, "dagbag": None}


class AirflowEnvError(RuntimeError):
    """Airflow was already set up differently in this process, or a DAG run did not succeed."""


def airflow_env(home: Path) -> dict[str, str]:
    """The ``AIRFLOW_*`` variables for an Airflow home at ``home`` (for this process or a child)."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # dag.test() runs tasks in this process; Airflow's own INFO chatter would drown the output.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def configured_home() -> Path | None:
    """The home ``configure_airflow`` set in this process, if any."""
    home: Path | None = _state["home"]
    return home


def configure_airflow(home: Path) -> Path:
    """Make this process's Airflow use ``home``; idempotent; refuses a second, different home."""
    home = Path(home).resolve()
    configured: Path | None = _state["home"]
    if configured is not None:
        if configured != home:
            raise AirflowEnvError(f"Airflow already configured with AIRFLOW_HOME={configured}, "
                                  f"cannot switch to {home} in the same process")
        return home
    if "airflow.configuration" in sys.modules:
        current = os.environ.get("AIRFLOW_HOME")
        if current is None or Path(current).resolve() != home:
            raise AirflowEnvError(f"airflow was imported before configure_airflow({home}); "
                                  f"it uses AIRFLOW_HOME={current!r}")
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_env(home))
    _state["home"] = home
    return home


def ensure_configured(default_home: Callable[[], Path]) -> Path:
    """The configured home, or configure ``default_home()`` now (test sessions, benchmarks)."""
    return configured_home() or configure_airflow(default_home())


def migrate_metadata_db() -> float:
    """``airflow db migrate`` for the configured home, skipped when already done; returns seconds."""
    home: Path | None = _state["home"]
    if home is None:
        raise AirflowEnvError("configure_airflow(home) first")
    stamp = home / ".cvhub-migrated"
    from airflow import __version__ as airflow_version

    if stamp.exists() and stamp.read_text() == airflow_version:
        return 0.0
    start = time.perf_counter()
    from airflow.utils import db

    db.initdb()
    stamp.write_text(airflow_version)
    return time.perf_counter() - start


@dataclass(frozen=True, slots=True)
class DagRunResult:
    """What one DAG run did: its state, each task instance's state and the run's seconds."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    failures: tuple[str, ...] = ()     # reasons recorded by flow_step during the run (retries too)

    @property
    def ok(self) -> bool:
        return self.state == "success"

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(k for k, v in self.task_states.items() if v in ("failed", "upstream_failed"))


def load_dags(*, refresh: bool = False) -> Any:
    """The DagBag of the repository's ``dags/`` folder (parsed once per process)."""
    if _state["dagbag"] is None or refresh:
        from airflow.dag_processing.dagbag import DagBag

        _state["dagbag"] = DagBag(dag_folder=str(DAGS_FOLDER))
    return _state["dagbag"]


def run_dag(
    dag_id: str,
    *,
    logical_date: datetime,
    conf: dict[str, Any] | None = None,
    check: bool = True,
) -> DagRunResult:
    """Run ``dag_id`` once for ``logical_date`` with ``dag.test()`` in this process.

    ``logical_date`` must be timezone-aware; a rerun for the same date clears and re-runs the same
    run (tasks are idempotent, so nothing changes). With ``check`` a run that did not succeed raises
    ``AirflowEnvError`` naming the failed tasks.
    """
    if logical_date.tzinfo is None:
        raise ValueError("logical_date must be timezone-aware (UTC)")
    migrate_metadata_db()
    bag = load_dags()
    if dag_id not in bag.dags:
        errors = "; ".join(f"{k}: {v.strip().splitlines()[-1]}" for k, v in bag.import_errors.items())
        raise AirflowEnvError(f"no DAG {dag_id!r} in {DAGS_FOLDER}" + (f" (import errors: {errors})"
                                                                         if errors else ""))
    dag = bag.dags[dag_id]
    # dag.test() merges a run's conf into the in-memory DAG's params, and the merged values outlive
    # the run; so every run states every param: the DAG's declared defaults, then the given conf.
    defaults = _state.setdefault("param_defaults", {})
    if dag_id not in defaults:
        defaults[dag_id] = {k: copy.deepcopy(dag.params.get_param(k).value) for k in dag.params}
    conf = {**copy.deepcopy(defaults[dag_id]), **(conf or {})}
    from plugins.cvhub_flows.failure import failure_mark, failures_since

    mark = failure_mark()
    start = time.perf_counter()
    dr = dag.test(logical_date=logical_date, run_conf=conf or None)
    seconds = time.perf_counter() - start
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dr.get_task_instances(session=session)
        states: dict[str, str] = {}
        for ti in tis:
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[key] = str(ti.state.value if hasattr(ti.state, "value") else ti.state)
    state = str(dr.state.value if hasattr(dr.state, "value") else dr.state)
    reasons = tuple(failures_since(mark))
    result = DagRunResult(dag_id=dag_id, run_id=dr.run_id, state=state, task_states=states,
                          seconds=seconds, failures=reasons)
    if check and not result.ok:
        raise AirflowEnvError(f"DAG {dag_id} run {dr.run_id} ended {state}; "
                              f"failed tasks: {', '.join(result.failed_tasks) or '-'}; "
                              f"reasons: {' | '.join(reasons) or '-'}")
    return result

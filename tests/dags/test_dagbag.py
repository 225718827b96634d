"""Every DAG file imports cleanly, follows the house rules, and does no I/O at import time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from plugins.cvhub_flows.airflow_env import DAGS_FOLDER, REPO_ROOT, airflow_env, load_dags

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))


def test_dags_folder_has_dags() -> None:
    assert DAG_FILES, f"no DAG files in {DAGS_FOLDER}"


def test_dagbag_imports_without_errors_or_warnings() -> None:
    bag = load_dags(refresh=True)
    assert bag.import_errors == {}, bag.import_errors
    assert getattr(bag, "captured_warnings", {}) == {}, bag.captured_warnings
    # every file contributes at least one DAG, and every DAG id starts with its file's stem
    by_file: dict[str, list[str]] = {}
    for dag_id, dag in bag.dags.items():
        by_file.setdefault(Path(dag.fileloc).stem, []).append(dag_id)
        assert dag_id.startswith(Path(dag.fileloc).stem), (dag_id, dag.fileloc)
    assert sorted(by_file) == sorted(p.stem for p in DAG_FILES)


def test_every_dag_follows_the_house_rules() -> None:
    bag = load_dags()
    for dag_id, dag in bag.dags.items():
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.catchup is False, f"{dag_id}: catchup must be False"
        assert dag.start_date is not None and dag.start_date.utcoffset() == timedelta(0), dag_id
        assert dag.max_active_runs == 1, f"{dag_id}: one run at a time (tasks write the ledger)"
        assert dag.doc_md, f"{dag_id}: doc_md explains the flow to the operator"
        for task in dag.tasks:
            # retries exist for retriable errors only: the policy fails anything else at once
            assert task.retry_policy is not None, f"{dag_id}.{task.task_id}: no retry policy"
            assert task.retry_exponential_backoff, f"{dag_id}.{task.task_id}: no backoff"


def test_ruff_air_rules_clean() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--select", "AIR", "--output-format", "concise",
                           "dags", "plugins"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


_NO_IO_PROBE = r"""
import importlib.util, json, os, sys
from pathlib import Path
# Third-party import-time work is not the DAG file's: airflow.sdk, and croniter (which runs
# `file -b python` via platform.architecture() when first imported).
import airflow.sdk, croniter  # noqa: F401
repo = Path(sys.argv[1]).resolve()
data = Path(os.environ["CVHUB_DATA_DIR"]).resolve()
venv = (repo / ".venv").resolve()
events = []
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        p = Path(os.fsdecode(args[0])).resolve()
        inside_repo = p.is_relative_to(repo) and not p.is_relative_to(venv)
        code = p.suffix in (".py", ".pyc", ".so") or p.is_dir()
        if (inside_repo and not code) or p.is_relative_to(data):
            events.append(f"open {p}")
    elif event in ("socket.connect", "subprocess.Popen", "os.system"):
        events.append(f"{event} {args[:2]!r}")
sys.addaudithook(hook)
for f in sys.argv[2:]:
    spec = importlib.util.spec_from_file_location(Path(f).stem + "_probe", f)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
print(json.dumps(events))
"""


def test_no_io_at_dag_import_time(tmp_path: Path) -> None:
    env = {**os.environ, **airflow_env(tmp_path / "home"), "CVHUB_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-c", _NO_IO_PROBE, str(REPO_ROOT), *map(str, DAG_FILES)],
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = json.loads(proc.stdout.strip().splitlines()[-1])
    assert events == [], events


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_is_thin(path: Path) -> None:
    """DAG files declare; flow logic lives in plugins.cvhub_flows (no ledger/connector imports here)."""
    text = path.read_text(encoding="utf-8")
    for forbidden in ("import sqlalchemy", "from sqlalchemy", "from connectors", "import connectors",
                      "from mappings", "from ledger", "import ledger", "os.environ", "open("):
        assert forbidden not in text, f"{path.name}: {forbidden!r} belongs in plugins/"
    assert "from airflow.sdk import" in text


EXPECTED = {
    # dag_id: {task_id: downstream task ids}
    "srm_payables": {"fetch": {"issue"}, "issue": {"write_back"}, "write_back": set()},
    "registry_sync": {"register": {"cancel_settled"}, "cancel_settled": set()},
    "financing_bank_a": {"submit": {"decisions"}, "decisions": set()},
    "financing_bank_b": {"submit": {"decisions"}, "decisions": set()},
    "maturity_clearing": {"open_due": {"plan"}, "plan": {"send"}, "send": {"status"}, "status": set()},
    "statements_bank_a": {"fetch": {"reconcile"}, "reconcile": {"summarise"}, "summarise": set()},
    "statements_bank_b": {"fetch": {"reconcile"}, "reconcile": {"summarise"}, "summarise": set()},
    "finance_package": {"build": {"deliver"}, "deliver": set()},
    "ledger_verify": {"verify": set()},
    "quarantine_replay": {"replay": set()},
    "erp_ap_import": {"import_ap": set()},
    "erp_gl_export": {"export_gl": set()},
}
SCHEDULES = {"quarantine_replay": None}


def test_each_dag_has_its_structure() -> None:
    bag = load_dags()
    assert set(bag.dags) == set(EXPECTED)
    for dag_id, shape in EXPECTED.items():
        dag = bag.dags[dag_id]
        assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == shape, dag_id
        scheduled = type(dag.timetable).__name__ not in ("NullTimetable", "_NullTimetable")
        assert scheduled == (dag_id not in SCHEDULES), (dag_id, type(dag.timetable).__name__)
    # dynamic task mapping over batches / files, never rows
    assert bag.dags["maturity_clearing"].get_task("send").is_mapped
    assert bag.dags["statements_bank_a"].get_task("reconcile").is_mapped
    # assets link producers to consumers
    outlets = {a.uri for t in bag.dags["statements_bank_a"].tasks for a in t.outlets}
    inlets = {a.uri for t in bag.dags["finance_package"].tasks for a in t.inlets}
    assert outlets & inlets == {"cvhub://recon/matches"}

"""Airflow for the DAG and plugin tests: one AIRFLOW_HOME per test process in a tmp dir, migrated once.

Airflow reads its configuration when first imported, and test modules import the hooks (hence
airflow.sdk) at collection time; so the home is set when this conftest is imported, before any test
module. tests/dags and tests/plugins share it (Airflow is configured once per process). Every test
runs against the same SQLite metadata DB (dag.test() runs are keyed by DAG and logical date);
ledger state is per test (the ``data_dir`` fixture).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# tests/ is on sys.path (rootdir conftest) and tests/ledger, tests/plugins... have no __init__.py, so
# without the repository root on sys.path `import ledger` becomes a namespace package of tests/ledger
# (importlib.resources.files("ledger") then misses ledger/data). A regular package anywhere on the
# path wins over namespace portions, so put the root on it before anything imports ledger.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

import pytest  # noqa: E402

from plugins.cvhub_flows.airflow_env import ensure_configured, migrate_metadata_db  # noqa: E402

AIRFLOW_HOME = ensure_configured(lambda: Path(tempfile.mkdtemp(prefix="cvhub-airflow-")))


@pytest.fixture(scope="session", autouse=True)
def airflow_home() -> Iterator[Path]:
    migrate_metadata_db()
    yield AIRFLOW_HOME
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)

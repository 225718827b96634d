"""``cvhub bench crash --points 20``: the main job killed with SIGKILL, then run again, point by point.

For each point a fresh data directory, ``cvhub demo`` killed with ``kill -9`` at that point, then
``cvhub demo`` again on the same directory (with the same ``CVHUB_CLOCK``, so journal heads are
comparable). A point passes when the rerun exits 0 with the clean run's summary (every line from
``business dates:`` to ``finance package:``, the ``verify:`` line with the journal head included)
and the sandboxes' durable state shows no duplicate submission: no payment batch, bank
application, registration, cancellation or SRM write-back applied more often than in the clean run,
and none of the same thing under two serials (two batches paying one EndToEndId, two applications
for one piece, two registrations of one piece for one funder).

Where the points come from. A clean run first, in a child process that records its timeline: every
flow step's start (``step:<dag>.<step>``) and end (``done:...``), every archive write
(``archive:<system>.<operation>.<direction>``: a request is archived just before it leaves, a
response just after it arrives), every claim of an SFTP file in the processed-file record
(``claim:<system>``: claimed, not yet downloaded) and every commit of a sandbox's durable state
(``commit:<sandbox>``: the far side has done it and not yet answered). Points are (label,
occurrence) pairs picked from that timeline: one inside every DAG (right after a sandbox commit or
a file claim when the DAG has one), the rest evenly spread over the whole run; the child of a point
SIGKILLs itself right after that event. A fifth of the points (``--timed``) are plain wall-clock
kills of the unmodified ``cvhub demo`` by the parent, spread over the clean run's duration (they
land anywhere: Airflow start-up, ledger transactions, sleeps — not reproducible to the millisecond,
by nature; a run quicker than the clean one is retried with an earlier kill).

The child is the real main job (``plugins.cvhub_flows.demo.run_demo``) with four wrappers
installed by this module only (production code has no kill hook); the rerun is the unmodified
``python -m cvhub.cli demo``. Prints one line per point and
``crash points=<n> passed=<n> duplicates=<n> rerun/clean=<ratio>`` (the reruns' mean time over the
clean run's, both measured here). ``--keep`` keeps the data directories.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLOCK = "2026-12-01"
RUN_TIMEOUT = 900.0


# --- the child: the main job with event hooks ------------------------------------------------------

class _Events:
    """Counts labelled events; SIGKILLs this process at the chosen one (after recording it)."""

    def __init__(self, kill: tuple[str, int] | None, timeline: Path | None, marker: Path | None) -> None:
        self.kill = kill
        self.timeline = timeline
        self.marker = marker
        self.seen: Counter[str] = Counter()
        self.log: list[tuple[float, str, str]] = []
        self.step = "demo"
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, label: str) -> None:
        with self.lock:
            self.seen[label] += 1
            if self.timeline is not None:
                self.log.append((time.monotonic() - self.start, label, self.step))
            if self.kill is not None and self.kill == (label, self.seen[label]):
                if self.marker is not None:
                    self.marker.write_text(json.dumps({"label": label, "nth": self.seen[label],
                                                       "step": self.step,
                                                       "t": time.monotonic() - self.start}))
                os.kill(os.getpid(), signal.SIGKILL)

    def dump(self) -> None:
        if self.timeline is not None:
            self.timeline.write_text(json.dumps(
                {"seconds": time.monotonic() - self.start,
                 "events": [{"t": round(t, 3), "label": lab, "step": st} for t, lab, st in self.log]}))


def _install(events: _Events) -> None:
    """Wrap flow steps, archive writes, SFTP file claims and sandbox commits: each one is an event."""
    from connectors.archive import Archive
    from connectors.sftp_record import ProcessedFiles
    from plugins.cvhub_flows import failure, runtime
    from sandbox.state import SandboxStore

    real_step = failure.flow_step

    @contextmanager
    def flow_step(name: str) -> Iterator[None]:
        events.step = name
        events(f"step:{name}")
        try:
            with real_step(name):
                yield
            events(f"done:{name}")
        finally:
            events.step = "demo"   # what happens between steps is the demo's (or a sandbox ticker's)

    failure.flow_step = flow_step  # type: ignore[assignment]
    runtime.flow_step = flow_step  # type: ignore[assignment]

    real_store = Archive.store

    def store(self: Archive, data: bytes, **kw: Any) -> Any:
        item = real_store(self, data, **kw)
        events(f"archive:{kw.get('system')}.{kw.get('operation')}.{kw.get('direction')}")
        return item

    Archive.store = store  # type: ignore[method-assign]

    real_commit = SandboxStore._commit

    def commit(self: SandboxStore) -> None:
        real_commit(self)
        events(f"commit:{self.path.stem if self.path else '?'}")

    SandboxStore._commit = commit  # type: ignore[method-assign]

    real_claim = ProcessedFiles.claim

    def claim(self: ProcessedFiles, key: Any, **kw: Any) -> Any:
        got = real_claim(self, key, **kw)
        events(f"claim:{key.system}")
        return got

    ProcessedFiles.claim = claim  # type: ignore[method-assign]


def child(argv: list[str]) -> int:
    """``python -m bench.crash child [--kill LABEL#N] [--timeline FILE] [--marker FILE]``."""
    p = argparse.ArgumentParser(prog="python -m bench.crash child")
    p.add_argument("--kill", default=None, help="LABEL#N: SIGKILL right after the N-th LABEL event")
    p.add_argument("--timeline", type=Path, default=None)
    p.add_argument("--marker", type=Path, default=None)
    args = p.parse_args(argv)
    kill = None
    if args.kill:
        label, _, nth = args.kill.rpartition("#")
        kill = (label, int(nth))
    from cvhub.settings import Settings
    from plugins.cvhub_flows.airflow_env import configure_airflow

    configure_airflow(Settings.from_env().data_dir / "airflow")  # before anything imports airflow
    events = _Events(kill, args.timeline, args.marker)
    _install(events)
    from plugins.cvhub_flows.demo import run_demo

    rc = run_demo()
    events.dump()
    return rc


# --- the parent: runs, points, checks --------------------------------------------------------------

@dataclass
class Run:
    """One process of the main job: exit code, output, seconds; ``killed`` if SIGKILL ended it."""

    rc: int
    out: str
    seconds: float
    data: Path

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL

    def summary(self) -> list[str]:
        """The demo's summary lines (``business dates:`` .. ``finance package:``), data dir as <data>."""
        lines = self.out.splitlines()
        try:
            first = max(i for i, x in enumerate(lines) if x.startswith("business dates:"))
        except ValueError:
            return []
        out = []
        for line in lines[first:]:
            out.append(line.replace(str(self.data), "<data>"))
            if line.startswith("finance package:"):
                break
        return out

    def head(self) -> str | None:
        for line in self.summary():
            if line.startswith("verify:") and "(head " in line:
                return line.rsplit("(head ", 1)[1].rstrip(")")
        return None


def _env(data: Path, clock: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CVHUB_"))}
    env.update({"CVHUB_DATA_DIR": str(data), "CVHUB_CLOCK": clock, "PYTHONUNBUFFERED": "1"})
    return env


def start(data: Path, clock: str, *, kill: tuple[str, int] | None = None, timeline: Path | None = None,
          hooked: bool = True) -> subprocess.Popen[str]:
    """Start the main job on ``data``: the hooked child (``hooked``) or the plain ``cvhub demo``."""
    data.mkdir(parents=True, exist_ok=True)
    if hooked:
        cmd = [sys.executable, "-m", "bench.crash", "child", "--marker", str(data / "killed.json")]
        if kill is not None:
            cmd += ["--kill", f"{kill[0]}#{kill[1]}"]
        if timeline is not None:
            cmd += ["--timeline", str(timeline)]
    else:
        cmd = [sys.executable, "-m", "cvhub.cli", "demo"]
    log = (data / "runs.log").open("a", encoding="utf-8")
    log.write(f"\n===== {' '.join(cmd[2:])}\n")
    log.flush()
    return subprocess.Popen(cmd, cwd=REPO, env=_env(data, clock), stdout=subprocess.PIPE,
                            stderr=log, text=True)


def finish(proc: subprocess.Popen[str], data: Path, started: float, *, kill_after: float | None = None,
           timeout: float = RUN_TIMEOUT) -> Run:
    """Wait for ``proc`` (SIGKILL it after ``kill_after`` seconds if given); collect its output."""
    if kill_after is not None:
        try:
            out, _ = proc.communicate(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)   # kill -9, as an operator would
            out, _ = proc.communicate(timeout=timeout)
    else:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    with (data / "runs.log").open("a", encoding="utf-8") as log:
        log.write(out or "")
    return Run(proc.returncode, out or "", time.monotonic() - started, data)


def run(data: Path, clock: str, **kw: Any) -> Run:
    kill_after = kw.pop("kill_after", None)
    t = time.monotonic()
    return finish(start(data, clock, **kw), data, t, kill_after=kill_after)


# --- duplicates, from the sandboxes' durable state ---------------------------------------------------

@dataclass
class Audit:
    """What the sandboxes recorded: applied effects per (system, ref) and natural-key duplicates."""

    effects: Counter[tuple[str, str]] = field(default_factory=Counter)
    submissions: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def duplicates(self, clean: Audit) -> list[str]:
        """Effects applied more often than in the clean run, and natural-key duplicates."""
        extra = [f"{system} {ref}: applied {n}x (clean run: {clean.effects.get((system, ref), 0)}x)"
                 for (system, ref), n in sorted(self.effects.items())
                 if n > clean.effects.get((system, ref), 0)]
        return extra + self.problems


def audit(state_dir: Path) -> Audit:
    """Read every sandbox store under ``state_dir`` (read-only) and count what was applied."""
    import base64

    from mappings.pain001 import parse_pain001
    from sandbox.state import read_tables

    a = Audit()
    tables = {p.stem: read_tables(p) for p in sorted(Path(state_dir).glob("*.sqlite"))}

    def counted(system: str, table: dict[str, Any]) -> None:
        for ref, n in table.items():
            a.effects[(system, ref)] += int(n)

    tre = tables.get("treasury", {})
    counted("treasury", tre.get("applied", {}))
    paid: Counter[str] = Counter()
    for serial, b in tre.get("batches", {}).items():
        a.submissions["treasury batches"] += 1
        _, instructions = parse_pain001(base64.b64decode(b["document"]), source=f"treasury:{serial}")
        paid.update(i.end_to_end_id for i in instructions)
    a.problems += [f"treasury: EndToEndId {e} in {n} batches" for e, n in sorted(paid.items()) if n > 1]

    ba = tables.get("bank_a", {})
    counted("bank_a", ba.get("applied", {}))
    pieces: Counter[str] = Counter()
    for f in ba.get("financings", {}).values():
        a.submissions["bank_a applications"] += 1
        if f["status"] != "REJECTED":
            pieces[f["piece_id"]] += 1
    a.problems += [f"bank_a: piece {p} under {n} live applications"
                   for p, n in sorted(pieces.items()) if n > 1]

    bb = tables.get("bank_b", {})
    counted("bank_b", bb.get("effects", {}))
    pieces = Counter(str(app["doc"].get("piece_id") or app["doc"]["voucher_id"])
                     for app in bb.get("applications", {}).values())
    a.submissions["bank_b applications"] += sum(pieces.values())
    a.problems += [f"bank_b: piece {p} under {n} applications" for p, n in sorted(pieces.items()) if n > 1]

    reg = tables.get("registry", {})
    counted("registry", reg.get("effects", {}))
    regs = Counter((r["property"].get("piece_id") or r["property"].get("voucher_id"), r["grantee"]["uscc"])
                   for r in reg.get("registrations", {}).values())
    a.submissions["registrations"] += sum(regs.values())
    a.submissions["cancellations"] += sum(1 for r in reg.get("registrations", {}).values()
                                          if r["status"] == "CANCELLED")
    a.problems += [f"registry: {p} registered {n}x for {g}" for (p, g), n in sorted(regs.items()) if n > 1]

    srm = tables.get("srm", {})
    counted("srm", srm.get("effects", {}))
    a.submissions["srm payables"] += len(srm.get("payables", {}))
    a.submissions["srm write-backs applied"] += sum(int(n) for n in srm.get("effects", {}).values())
    return a


# --- points ---------------------------------------------------------------------------------------

def pick_points(events: list[dict[str, Any]], n: int) -> list[tuple[str, int]]:
    """``n`` (label, occurrence) kill points over a clean timeline: one inside every DAG first (the
    middle sandbox commit of its events, else its middle event), then evenly spread over the whole
    run (see the module docstring)."""
    nth: list[tuple[str, int]] = []
    seen: Counter[str] = Counter()
    for e in events:
        seen[e["label"]] += 1
        nth.append((e["label"], seen[e["label"]]))
    by_dag: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        dag = e["step"].split(".", 1)[0]
        by_dag.setdefault(dag, []).append(i)
    chosen: list[int] = []
    for idx in by_dag.values():
        # inside each DAG, preferably right after a sandbox committed or a file was claimed (the far
        # side has done it, or a claim is held, and the hub has not recorded it: what a rerun must fix)
        commits = [i for i in idx if events[i]["label"].startswith(("commit:", "claim:"))] or idx
        if len(chosen) < n:
            chosen.append(commits[len(commits) // 2])
    rest = min(n, len(events)) - len(chosen)
    for k in range(rest):
        j = min(len(events) - 1, round((k + 0.5) * len(events) / rest))
        while j in chosen:   # the next event not taken yet (wrapping round)
            j = (j + 1) % len(events)
        chosen.append(j)
    return [nth[i] for i in sorted(set(chosen))]


# --- the campaign ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["child"]:
        return child(argv[1:])
    p = argparse.ArgumentParser(prog="cvhub bench crash", description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=20, help="kill points in all (default 20)")
    p.add_argument("--timed", type=int, default=None,
                   help="of which wall-clock kills of the plain `cvhub demo` (default: a fifth)")
    p.add_argument("--clock", default=DEFAULT_CLOCK, help="CVHUB_CLOCK of every run")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    args = p.parse_args(argv)
    timed = args.points // 5 if args.timed is None else args.timed
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cvhub-bench-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    try:
        return _campaign(work, args.clock, args.points - timed, timed)
    finally:
        print(f"campaign took {time.monotonic() - began:.0f}s; data in {work}"
              + ("" if args.keep else " (removed)"), flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _campaign(work: Path, clock: str, n_events: int, n_timed: int) -> int:
    clean = run(work / "clean", clock, timeline=work / "timeline.json")
    if clean.rc != 0 or not clean.head():
        print(f"crash: the clean run failed (exit {clean.rc}); see {work / 'clean' / 'runs.log'}")
        return 2
    reference = clean.summary()
    clean_audit = audit(work / "clean" / "sandbox" / "state")
    timeline = json.loads((work / "timeline.json").read_text())
    events = timeline["events"]
    print(f"clean run: {clean.seconds:.1f}s, {len(events)} events, head {clean.head()}", flush=True)
    print("  submissions: " + ", ".join(f"{k} {v}" for k, v in sorted(clean_audit.submissions.items())),
          flush=True)
    points: list[dict[str, Any]] = [{"kill": k} for k in pick_points(events, n_events)]
    span = float(timeline["seconds"]) * 0.95
    points += [{"after": round(span * (i + 0.5) / n_timed, 1)} for i in range(n_timed)]
    passed = dup_total = 0
    reruns: list[float] = []
    for i, point in enumerate(points, 1):
        data = work / f"p{i:02d}"
        if "kill" in point:
            crashed = run(data, clock, kill=point["kill"])
            what = f"{point['kill'][0]}#{point['kill'][1]}"
        else:
            after = point["after"]
            crashed = run(data, clock, hooked=False, kill_after=after)
            while not crashed.killed and crashed.rc == 0 and after > 1:
                # this run was quicker than the clean one (load varies): kill the next one earlier
                after = round(after * 0.7, 1)
                shutil.rmtree(data)
                crashed = run(data, clock, hooked=False, kill_after=after)
            what = f"t={after}s"
        marker = data / "killed.json"
        where = json.loads(marker.read_text())["step"] if marker.exists() else ""
        rerun = run(data, clock, hooked=False)
        reruns.append(rerun.seconds)
        dups = audit(data / "sandbox" / "state").duplicates(clean_audit)
        dup_total += len(dups)
        same = rerun.summary() == reference
        ok = crashed.killed and rerun.rc == 0 and same and not dups
        passed += ok
        state = "killed" if crashed.killed else f"exit {crashed.rc} (not killed: the run ended first)"
        print(f"{i:2d} {'PASS' if ok else 'FAIL'} {what:<58} {state:<8} after {crashed.seconds:5.1f}s"
              f"{' in ' + where if where else ''}; rerun exit {rerun.rc} {rerun.seconds:5.1f}s, "
              f"summary {'same' if same else 'DIFFERENT'}, duplicates {len(dups)}", flush=True)
        if not same:
            for line in rerun.summary() or rerun.out.splitlines()[-5:]:
                print(f"     | {line}")
        for d in dups:
            print(f"     duplicate: {d}")
    ratio = (sum(reruns) / len(reruns)) / clean.seconds if reruns else 0.0
    print(f"crash points={len(points)} passed={passed} duplicates={dup_total} rerun/clean={ratio:.2f}")
    return 0 if passed == len(points) else 1


if __name__ == "__main__":
    raise SystemExit(main())

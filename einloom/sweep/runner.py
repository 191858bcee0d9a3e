"""Run a sweep: enumerate, skip what the store has, evaluate the rest on an executor, store as results arrive.

:func:`run_sweep` is resumable by construction: points are identified by their content hash, the
store already holding a point means it is not evaluated again, and each finished chunk is committed
in its own transaction.  Pruned points (constraints) and invalid designs are stored too, with the
reason, so reports and ``--status`` account for every point of the sweep.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from einloom.sweep.executors import DEFAULT_POINT_FUNCTION, InProcessExecutor
from einloom.sweep.space import PointSpec, SweepPoints, enumerate_points, iter_chunks
from einloom.sweep.spec import Sweep
from einloom.sweep.errors import SweepError
from einloom.sweep.store import Store, is_running

HEARTBEAT_S = 5.0


@dataclass
class RunSummary:
    """What one run did: points planned, already stored, evaluated now, failed now; and how long."""

    planned: int
    pruned: int
    invalid: int
    already_stored: int
    evaluated: int = 0
    failed: int = 0
    seconds: float = 0.0
    executor: str = "local"
    workers: int = 1
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.seconds if self.seconds > 0 else 0.0


def auto_chunk(todo: int, workers: int) -> int:
    """Points per task: about 16 tasks per worker, between 1 and 32 points each."""
    return max(1, min(32, todo // max(1, 16 * workers)))


def store_plan(store: Store, sweep: Sweep, points: SweepPoints) -> None:
    """Record the sweep and the keys of its points (reports show exactly these points)."""
    store.set_meta("sweep", sweep.to_dict())
    store.set_meta("sweep_text", sweep.text)
    store.set_meta("parameters", points.parameter_names)
    store.set_meta("planned_keys", [p["key"] for p in points.points])
    store.set_meta("designs", points.designs)
    store.set_meta("duplicates_dropped", points.duplicates_dropped)


def run_sweep(sweep: Sweep, outdir: str | Path, executor: Any | None = None, *, chunk: int | None = None,
              retry_failed: bool = False, progress: bool = True, point_function: str = DEFAULT_POINT_FUNCTION,
              points: SweepPoints | None = None, on_outcome: Callable[[Mapping[str, Any]], None] | None = None
              ) -> RunSummary:
    """Evaluate every point of ``sweep`` that ``outdir``'s store lacks (see the module docstring).

    ``KeyboardInterrupt`` stops the run after recording it (every stored point stays); the caller
    re-raises or reports it.  ``executor`` defaults to this process.
    """
    from tqdm import tqdm

    executor = executor or InProcessExecutor()
    points = points or enumerate_points(sweep)
    with Store(outdir, create=True) as store:
        active = [r for r in store.runs() if is_running(r)]
        if active:
            raise SweepError(f"a sweep is already running in {outdir} (pid {active[-1]['pid']} on "
                             f"{active[-1]['host']}, started as run {active[-1]['id']})",
                             hint=f"wait for it or stop it; 'einloom sweep --status {outdir}' shows its progress")
        store_plan(store, sweep, points)
        stored = store.statuses()
        static = [(p, "pruned", p["pruned"]) if p.get("pruned") else (p, "failed", p["invalid"])
                  for p in points.points if (p.get("pruned") or p.get("invalid")) and p["key"] not in stored]
        todo = [p for p in points.to_evaluate
                if p["key"] not in stored or (retry_failed and stored[p["key"]] == "failed")]
        summary = RunSummary(planned=len(points.points), pruned=sum(1 for p in points.points if p.get("pruned")),
                             invalid=sum(1 for p in points.points if p.get("invalid")),
                             already_stored=len(points.points) - len(todo) - len(static),
                             executor=executor.name, workers=executor.workers)
        run = store.begin_run(executor.name, len(todo))
        store.put_many(static, run=run)
        by_key: dict[str, PointSpec] = {p["key"]: p for p in todo}
        size = chunk or auto_chunk(len(todo), executor.workers)
        bar = tqdm(total=len(todo), desc=sweep.name, unit="pt", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True, smoothing=0.05)
        start = last_beat = time.perf_counter()
        outcome_label = "completed"
        try:
            for outcomes in executor.run(point_function, list(iter_chunks(todo, size))):
                _store_outcomes(store, by_key, outcomes, run, summary)
                if on_outcome is not None:
                    for o in outcomes:
                        on_outcome(o)
                bar.update(len(outcomes))
                if summary.failed:
                    bar.set_postfix_str(f"{summary.failed} failed", refresh=False)
                now = time.perf_counter()
                if now - last_beat > HEARTBEAT_S:
                    store.heartbeat(run)
                    last_beat = now
        except KeyboardInterrupt:
            summary.interrupted = True
            outcome_label = "interrupted"
            raise
        except BaseException:
            outcome_label = "crashed"
            raise
        finally:
            summary.seconds = time.perf_counter() - start
            bar.close()
            store.end_run(run, outcome_label)
    return summary


def _store_outcomes(store: Store, by_key: Mapping[str, PointSpec], outcomes: Sequence[Mapping[str, Any]], run: int,
                    summary: RunSummary) -> None:
    from einloom.sweep.store import transaction
    with transaction(store.db):
        for o in outcomes:
            spec = by_key[o["key"]]
            store.put(spec, o["status"], result=o.get("result"), error=o.get("error"), run=run,
                      seconds=o.get("seconds"), worker=o.get("worker"))
            summary.evaluated += 1
            if o["status"] == "failed":
                summary.failed += 1
                summary.failures.append((o["key"], str(o.get("error"))))

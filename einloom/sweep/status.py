"""Progress of a running or stopped sweep, read from its store (``einloom sweep --status DIR``)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from einloom.sweep.store import is_running, open_existing


def sweep_status(directory: str | Path) -> dict[str, Any]:
    """Counts of the planned points by status, the runs so far, the latest run's rate and an ETA.

    ``state`` is ``running`` (a run has not ended and its process is alive), ``complete`` (every
    planned point is stored), ``stopped`` (points remain and nothing is running) or ``empty``.
    """
    with open_existing(directory) as store:
        planned = store.meta("planned_keys") or []
        sweep = store.meta("sweep") or {}
        statuses = store.statuses()
        runs = store.runs()
        latest = runs[-1] if runs else None
        finished = store.finished_times(latest["id"]) if latest else []
    counts = {"done": 0, "failed": 0, "pruned": 0}
    for key in planned:
        status = statuses.get(key)
        if status in counts:
            counts[status] += 1
    stored = sum(counts.values())
    remaining = len(planned) - stored
    running = latest is not None and is_running(latest)
    rate = None
    if latest is not None and len(finished) >= 2:
        span = (time.time() if running else (latest.get("ended") or finished[-1])) - latest["started"]
        rate = len(finished) / span if span > 0 else None
    state = "running" if running else ("complete" if planned and remaining == 0 else
                                       "stopped" if planned else "empty")
    return {"directory": str(directory), "name": sweep.get("name"), "state": state, "planned": len(planned),
            "stored": stored, "remaining": remaining, **counts,
            "rate_points_per_s": rate, "eta_s": (remaining / rate) if rate and remaining else None,
            "runs": [{k: r[k] for k in ("id", "executor", "started", "ended", "outcome", "planned", "host", "pid")}
                     for r in runs]}


def format_status(status: dict[str, Any]) -> str:
    """The status as a few lines and a table of runs."""
    from einloom.report.table import format_table
    planned = status["planned"] or 1
    lines = [f"{status['name']}: {status['state']}  ({status['directory']})",
             f"  points   {status['stored']:,} of {status['planned']:,} stored ({status['stored'] / planned:.1%}): "
             f"{status['done']:,} done, {status['failed']:,} failed, {status['pruned']:,} pruned; "
             f"{status['remaining']:,} remaining"]
    if status["rate_points_per_s"]:
        eta = status["eta_s"]
        lines.append(f"  rate     {status['rate_points_per_s']:.3g} points/s in the latest run"
                     + (f"; ETA {_duration(eta)}" if eta and status["state"] == "running" else
                        f"; the remaining points need about {_duration(eta)} at that rate" if eta else ""))
    if status["state"] == "stopped":
        lines.append("  resume   run the same 'einloom sweep' command again: stored points are not re-run")
    rows = [[r["id"], r["executor"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"])),
             _duration(r["ended"] - r["started"]) if r["ended"] else "-", r["planned"], r["outcome"] or "running"]
            for r in status["runs"]]
    if rows:
        lines.append("")
        lines.append(format_table(["run", "executor", "started", "took", "to evaluate", "outcome"], rows))
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

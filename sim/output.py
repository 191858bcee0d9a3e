"""Outputs of a simulation: a Perfetto / Chrome trace (JSON) and a utilization timeline plot.

The trace has one track (thread) per unit (``2d``, ``1d`` arrays, ``dram`` channel), one slice per
tile op (name = Einsum or tensor, args = instance and tile indices), and counters for DRAM bandwidth
use and each array's utilization per time bin, and a counter track of the global buffer's occupancy
(bytes held, at every change: a tile is held from its load until its last reader ends).  Timestamps are cycles shown as microseconds (1 cycle
= 1 us in the viewer), as Perfetto needs integers or floats in us.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from einloom.sim.simulator import SimResult

__all__ = ["chrome_trace", "write_trace", "plot_utilization"]

_TIDS = {"2d": 1, "1d": 2, "dram": 3}


def chrome_trace(result: SimResult) -> dict[str, Any]:
    """The trace as a Chrome trace-event dict (open in ui.perfetto.dev or chrome://tracing)."""
    events: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "einloom sim"}}]
    tids = dict(_TIDS)
    for unit, *_ in result.trace:          # a unit of an array with concurrent units ("1d.exp"): its own track
        tids.setdefault(unit, len(tids) + 1)
    for unit, tid in tids.items():
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": unit}})
    for unit, name, inst, tile, start, end, nbytes in result.trace:
        args = {"instance": inst, "tile": list(tile)}
        if nbytes:
            args["bytes"] = nbytes
        events.append({"name": name, "ph": "X", "pid": 1, "tid": tids[unit], "ts": start,
                       "dur": max(end - start, 0.0), "args": args})
    tl = result.timeline
    edges = tl.get("edges", [])
    for key, label in (("util_2d", "2d utilization"), ("util_1d", "1d utilization"),
                       ("dram_busy", "DRAM bandwidth used")):
        for t, v in zip(edges, tl.get(key, [])):
            events.append({"name": label, "ph": "C", "pid": 1, "ts": t, "args": {"value": v}})
    steps = tl.get("buffer_steps") or {"cycles": edges, "bytes": tl.get("buffer_bytes", [])}
    for t, v in zip(steps["cycles"], steps["bytes"]):        # every change of the bytes held
        events.append({"name": "buffer occupancy (bytes)", "ph": "C", "pid": 1, "ts": t, "args": {"bytes": v}})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"latency_cycles": result.latency_cycles, "extrapolation": result.extrapolation,
                          "trace_ops": len(result.trace)}}


def write_trace(result: SimResult, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(chrome_trace(result)))
    return path


def plot_utilization(result: SimResult, path: str | Path, title: str = "") -> Path:
    """Per-array utilization, DRAM bandwidth use and buffer occupancy over the simulated time (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tl = result.timeline
    edges = tl["edges"]
    mids = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for key, label in (("util_2d", "2D array"), ("util_1d", "1D array")):
        if key in tl:
            axes[0].plot(mids, tl[key], label=label)
    axes[0].set_ylabel("utilization")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(loc="lower right")
    if "dram_busy" in tl:
        axes[1].plot(mids, tl["dram_busy"], color="tab:red", label="DRAM channel busy")
    axes[1].set_ylabel("DRAM busy")
    axes[1].set_ylim(0, 1.05)
    axes[1].legend(loc="lower right")
    if "buffer_bytes" in tl:
        axes[2].step(edges[:-1], tl["buffer_bytes"], where="post", color="tab:green", label="buffer held (peak per bin)")
        if result.buffer_capacity_bytes:
            axes[2].axhline(result.buffer_capacity_bytes, ls="--", c="gray", label="capacity")
    axes[2].set_ylabel("buffer bytes")
    axes[2].set_xlabel("cycle (simulated part)")
    axes[2].legend(loc="lower right")
    fig.suptitle(title or f"simulated {result.latency_cycles:,.0f} cycles ({result.extrapolation})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

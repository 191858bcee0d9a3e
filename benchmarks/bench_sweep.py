"""Sweep throughput: points/s of a 1,000-point sweep on each executor, and the executors' own cost per point.

    python benchmarks/bench_sweep.py               (about 2-3 minutes on 2 cores)
    python benchmarks/bench_sweep.py --points 200  (quicker)
    python benchmarks/bench_sweep.py --json

The sweep: FuseMax's 1-pass cascade with FuseMax's mapping on fusemax-cloud, BERT-Base at 4K tokens,
designs from a Latin hypercube over the array size (16..512, log), the global buffer (1 MiB..64 MiB,
log), the clock (500..1500 MHz) and the DRAM bandwidth (100..1600 GB/s, log): every point is a real
mapping + evaluation, stored in SQLite as the CLI stores it.  Each executor starts on an empty store.

Figures printed:
* real points/s per executor (local: 1 process = in this process, 2 = a process pool; dask-local:
  LocalCluster of 1 and 2 single-threaded workers), without and with the cluster's start-up;
* the evaluation's own cost per point (the in-process run's seconds per point, minus overhead);
* overhead per point: the same points with a point function that does nothing
  (:func:`einloom.sweep.faults.noop_point`): enumeration excluded, scheduling + transfer + store included;
  for Dask also with one point per task (chunk 1), which is the scheduler's per-task cost.

docs/sweeps.md turns these figures into the projection for 100,000 points on a 100-node cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """\
name: bench-sweep
arch: fusemax-cloud
variants: [fusemax-1pass]
workloads: [{{model: bert, seq_len: 4K}}]
mapping: auto
parameters:
  - {{name: array, paths: [array_2d.rows, array_2d.cols, array_1d.width], range: [16, 512], log: true, integer: true}}
  - {{name: buffer, path: global_buffer.capacity_bytes, range: [1MiB, 64MiB], log: true, integer: true}}
  - {{name: clock, path: clock_mhz, range: [500, 1500], integer: true}}
  - {{name: dram, path: dram.bandwidth_GBps, range: [100, 1600], log: true}}
sampling: {{method: lhs, samples: {samples}}}
seed: 0
"""


def measure(sweep, points, kind: str, n: int, function: str, chunk: int | None) -> dict:
    from einloom.sweep.executors import make_executor
    from einloom.sweep.runner import run_sweep
    start = time.perf_counter()
    executor = make_executor(kind, jobs=n, workers=n)
    startup = time.perf_counter() - start
    try:
        with tempfile.TemporaryDirectory(prefix="einloom-bench-") as out:
            summary = run_sweep(sweep, out, executor, chunk=chunk, progress=False, points=points,
                                point_function=function)
    finally:
        executor.close()
    assert summary.evaluated == len(points.to_evaluate), (summary.evaluated, len(points.to_evaluate))
    return {"executor": kind, "processes": n, "chunk": chunk or "auto", "points": summary.evaluated,
            "failed": summary.failed,
            "seconds": summary.seconds, "startup_s": startup, "points_per_s": summary.evaluated / summary.seconds,
            "points_per_s_with_startup": summary.evaluated / (summary.seconds + startup),
            "ms_per_point": 1e3 * summary.seconds / summary.evaluated}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from einloom.report.table import format_table
    from einloom.sweep.space import enumerate_points
    from einloom.sweep.spec import load_sweep

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(SWEEP.format(samples=args.points))
        sweep = load_sweep(path)
    t = time.perf_counter()
    points = enumerate_points(sweep)
    enumerate_s = time.perf_counter() - t
    real, noop = "einloom.sweep.point:evaluate_point", "einloom.sweep.faults:noop_point"
    runs = [("local", 1), ("local", 2), ("dask-local", 1), ("dask-local", 2)]
    results = {"points": len(points.to_evaluate), "enumerate_s": enumerate_s, "cpus": os.cpu_count(),
               "loadavg_before": os.getloadavg()[0], "real": [], "noop": []}
    for kind, n in runs:
        results["real"].append(measure(sweep, points, kind, n, real, None))
        print(f"  real  {kind} x{n}: {results['real'][-1]['points_per_s']:.1f} points/s", file=sys.stderr)
    for kind, n in runs + [("dask-local", 1), ("dask-local", 2)]:
        chunk = 1 if len([r for r in results["noop"] if r["executor"] == kind and r["processes"] == n]) else None
        results["noop"].append(measure(sweep, points, kind, n, noop, chunk))
        print(f"  noop  {kind} x{n} chunk {chunk or 'auto'}: {results['noop'][-1]['ms_per_point']:.3f} ms/point",
              file=sys.stderr)
    results["loadavg_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{results['points']} points (enumerated and keyed in {enumerate_s:.2f} s), {results['cpus']} CPUs, "
          f"load average {results['loadavg_before']:.1f} before / {results['loadavg_after']:.1f} after")
    print(format_table(["executor", "processes", "seconds", "points/s", "start-up s", "points/s incl. start-up",
                        "ms/point", "failed"],
                       [[r["executor"], r["processes"], r["seconds"], r["points_per_s"], r["startup_s"],
                         r["points_per_s_with_startup"], r["ms_per_point"], r["failed"]] for r in results["real"]],
                       title="real evaluation (FuseMax mapping + analytical model + SQLite store; "
                             "a failed point is a design whose buffer is too small for the mapping)"))
    print()
    print(format_table(["executor", "processes", "chunk", "seconds", "overhead ms/point", "points/s"],
                       [[r["executor"], r["processes"], str(r["chunk"]), r["seconds"], r["ms_per_point"],
                         r["points_per_s"]] for r in results["noop"]],
                       title="overhead per point (a point function that does nothing)"))
    inproc = results["real"][0]["ms_per_point"] - results["noop"][0]["ms_per_point"]
    print(f"\nevaluation alone: {inproc:.2f} ms per point in one process")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``einloom sweep SWEEP.yaml``: design-space exploration; ``einloom sweep --status DIR``: its progress."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from einloom.einsum.errors import Location

EPILOG = """\
examples:
  einloom sweep examples/sweeps/array-buffer.yaml                     (local, one process)
  einloom sweep examples/sweeps/array-buffer.yaml --jobs 2
  einloom sweep examples/sweeps/variants-workloads.yaml --executor dask-local --workers 2
  einloom sweep big.yaml --executor dask --scheduler tcp://10.0.0.5:8786
  einloom sweep --status results/sweeps/array-buffer
  einloom sweep examples/sweeps/array-buffer.yaml --dry-run           (points and pruning only)

Results go to OUTDIR/sweep.db (SQLite, one row per point under its content hash); an interrupted
sweep resumes where it stopped when the same command runs again, and failed points are retried only
with --retry-failed.  After the run, OUTDIR gets results.csv/json(/parquet), figures/ and report.html
('einloom report sweep OUTDIR' regenerates them).  The sweep file format: 'python -c "import
einloom.sweep.spec as s; help(s)"'.  The dask executors need: pip install 'einloom[dask]'.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="design-space exploration: sweep architecture parameters x variants x workloads",
        description="Evaluate every point of a sweep file (designs from grid / random / Latin-hypercube "
                    "sampling of architecture fields, times variants, times workloads), store each result, "
                    "and write Pareto fronts, sensitivity plots and an HTML report.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", nargs="?", metavar="SWEEP.yaml", help="the sweep file")
    parser.add_argument("--status", metavar="DIR", help="report the progress of the sweep stored in DIR and exit")
    parser.add_argument("-o", "--output", metavar="OUTDIR", help="output folder (default: the file's output:)")
    parser.add_argument("--executor", choices=["local", "dask", "dask-local"], default="local",
                        help="where points run (default local processes)")
    parser.add_argument("--jobs", type=int, metavar="N", help="local executor: worker processes (default 1)")
    parser.add_argument("--workers", type=int, metavar="N", help="dask-local: LocalCluster worker processes")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="dask: scheduler address, e.g. tcp://HOST:8786")
    parser.add_argument("--chunk", type=int, metavar="N", help="points per task (default: about 16 tasks per worker)")
    parser.add_argument("--retry-failed", action="store_true", help="evaluate failed points again")
    parser.add_argument("--dry-run", action="store_true", help="enumerate and prune the points, evaluate none")
    parser.add_argument("--no-report", action="store_true", help="do not write the report after the run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--json", action="store_true", help="print the run summary (or --status) as JSON")
    parser.set_defaults(func=run)


def _check_flags(args) -> None:
    from einloom.sweep.errors import SweepError

    def fail(flag: str, message: str, hint: str) -> SweepError:
        return SweepError(message, location=Location(field=flag), hint=hint)

    if args.status:
        if args.sweep:
            raise fail("--status", "--status takes a sweep's output folder, not a sweep file as well",
                       "write einloom sweep --status DIR")
        return
    if not args.sweep:
        raise fail("SWEEP.yaml", "no sweep file given", "write einloom sweep SWEEP.yaml, or --status DIR")
    for flag, value in (("--jobs", args.jobs), ("--workers", args.workers), ("--chunk", args.chunk)):
        if value is not None and value < 1:
            raise fail(flag, f"must be at least 1, got {value}", f"write {flag} 2")
    if args.jobs is not None and args.executor != "local":
        raise fail("--jobs", f"--jobs is for the local executor, not {args.executor}",
                   "use --workers N with dask-local; a dask cluster has its own workers")
    if args.workers is not None and args.executor != "dask-local":
        raise fail("--workers", "--workers is for --executor dask-local", "use --jobs N for local processes")
    if args.scheduler and args.executor != "dask":
        raise fail("--scheduler", "--scheduler is for --executor dask", "add --executor dask")
    if args.executor == "dask" and not args.scheduler:
        raise fail("--scheduler", "--executor dask needs --scheduler tcp://HOST:PORT",
                   "or use --executor dask-local --workers N for a cluster on this machine")


def run(args) -> int:
    from einloom.sweep.status import format_status, sweep_status
    _check_flags(args)
    if args.status:
        status = sweep_status(args.status)
        print(json.dumps(status, indent=1) if args.json else format_status(status))
        return 0

    from einloom.sweep.executors import make_executor
    from einloom.sweep.runner import run_sweep
    from einloom.sweep.space import enumerate_points
    from einloom.sweep.spec import load_sweep
    sweep = load_sweep(args.sweep)
    outdir = Path(args.output or sweep.output)
    points = enumerate_points(sweep)
    if args.dry_run:
        return _dry_run(sweep, points, args.json)
    progress = not args.no_progress and sys.stderr.isatty()
    executor = make_executor(args.executor, jobs=args.jobs or 1, workers=args.workers, scheduler=args.scheduler)
    try:
        summary = run_sweep(sweep, outdir, executor, chunk=args.chunk, retry_failed=args.retry_failed,
                            progress=progress, points=points)
    except KeyboardInterrupt:
        status = sweep_status(outdir)
        print(f"einloom sweep: interrupted; {status['stored']:,} of {status['planned']:,} points are stored in "
              f"{outdir} and none is lost: run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        executor.close()
    written = []
    if not args.no_report:
        from einloom.report.sweep import load_sweep_data, summary_text, write_report
        written = write_report(outdir)
    if args.json:
        print(json.dumps({"output": str(outdir), "planned": summary.planned, "pruned": summary.pruned,
                          "invalid": summary.invalid, "already_stored": summary.already_stored,
                          "evaluated": summary.evaluated, "failed": summary.failed, "seconds": summary.seconds,
                          "points_per_s": summary.points_per_s, "executor": summary.executor,
                          "workers": summary.workers, "written": [str(p) for p in written]}, indent=1))
        return 0
    print(f"{sweep.name}: {summary.planned:,} points ({summary.pruned:,} pruned, {summary.invalid:,} invalid designs, "
          f"{summary.already_stored:,} already stored); evaluated {summary.evaluated:,} in {summary.seconds:.1f} s "
          f"({summary.points_per_s:.3g} points/s, {summary.executor} x {summary.workers}); {summary.failed:,} failed")
    if written:
        print()
        print(summary_text(load_sweep_data(outdir)))
        print(f"\nwrote {outdir / 'report.html'}, {outdir / 'results.csv'}, {outdir / 'results.json'} and "
              f"{sum(1 for p in written if p.suffix == '.png')} figures")
    for key, error in summary.failures[:3]:
        print(f"warning: point {key[:12]} failed: {error}", file=sys.stderr)
    return 0


def _dry_run(sweep, points, as_json: bool) -> int:
    from collections import Counter

    from einloom.report.table import format_table
    reasons = Counter(p["pruned"] for p in points.points if p.get("pruned"))
    data = {"name": sweep.name, "designs": points.designs, "duplicates_dropped": points.duplicates_dropped,
            "points": len(points.points), "to_evaluate": len(points.to_evaluate),
            "pruned": sum(reasons.values()), "invalid": sum(1 for p in points.points if p.get("invalid"))}
    if as_json:
        print(json.dumps(data, indent=1))
        return 0
    print(f"{sweep.name}: {points.designs} designs x {len(sweep.configurations)} configurations x {len(sweep.workloads)} "
          f"workloads = {len(points.points)} points; {len(points.to_evaluate)} to evaluate, "
          f"{data['pruned']} pruned, {data['invalid']} invalid")
    if reasons:
        print(format_table(["pruned because", "points"], [[k, n] for k, n in reasons.most_common(10)]))
    return 0

"""``einloom evaluate EXPERIMENT.yaml``: run an experiment and write its results and report."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLE = """example:
  einloom evaluate examples/experiments/fusemax-paper.yaml
  einloom evaluate examples/experiments/smoke.yaml -o /tmp/smoke --json
  einloom evaluate --report-only results/fusemax-paper/results.json -o results/fusemax-paper

writes OUTDIR/results.csv, results.json, figures/*.png, summary.md and summary.html"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="run an experiment (models x sequence lengths x configurations) and write a report",
        description="Evaluate every model x sequence length x configuration x scope of an experiment file "
                    "with the analytical model, write results.csv and results.json, and regenerate the "
                    "figures (speedup and energy vs the baseline, utilisation, per-Einsum 2D activity, "
                    "area vs latency) and summary.md / summary.html from results.json.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="experiment .yaml (or, with --report-only, a results.json)")
    parser.add_argument("-o", "--output", metavar="OUTDIR", help="output folder (default: the file's output:)")
    parser.add_argument("--json", action="store_true", help="print results.json's rows and the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--report-only", action="store_true",
                        help="only regenerate the figures and summaries from an existing results.json")
    parser.set_defaults(func=run)


def run(args) -> int:
    from einloom.experiment import load_experiment, run_experiment
    from einloom.report.experiment import load_results, summary_tables, summary_text, write_report

    if args.report_only:
        results_path = Path(args.experiment)
        outdir = Path(args.output) if args.output else results_path.parent
        write_report(results_path, outdir)
        print(summary_text(load_results(results_path)))
        return 0
    experiment = load_experiment(args.experiment)
    outdir = Path(args.output or experiment.output)
    results = run_experiment(experiment, progress=not args.no_progress and sys.stderr.isatty())
    json_path, csv_path = results.write(outdir)
    written = write_report(json_path, outdir)
    errors = results.errors()
    if args.json:
        data = load_results(json_path)
        data["summary"] = [{"title": t, "headers": h, "rows": b} for t, h, b in summary_tables(data)]
        print(json.dumps(data, indent=1))
    else:
        print(f"{experiment.name}: {len(results.rows)} points + {len(results.sweep_rows)} sweep points "
              f"in {results.elapsed_s:.2f} s; {len(errors)} failed")
        print(summary_text(load_results(json_path)))
        print(f"\nwrote {csv_path}, {json_path}, " + ", ".join(str(p) for p in written))
    for row in errors[:5]:
        print(f"warning: {row['model']} {row['seq_len']} {row['configuration']} {row['scope']}: {row['error']}",
              file=sys.stderr)
    return 0

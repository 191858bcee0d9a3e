"""``einloom evaluate EXPERIMENT.yaml``: run an experiment and write its results and report."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from einloom.base.errors import Location

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


def validate_results(path: str | Path) -> dict:
    """Check that ``path`` is an einloom ``results.json`` (the fields the report reads, with their types)
    before any figure is drawn; errors name the file, line and field."""
    from einloom.base.errors import ExperimentError
    from einloom.base.fields import FieldReader
    from einloom.base.yamlio import load_json
    from einloom.experiment import SCOPES
    data, linemap = load_json(path, error=ExperimentError)
    r = FieldReader(linemap, ExperimentError)
    top = r.mapping(data, (), ("experiment", "rows"), what="an einloom results.json object", open_keys=True)
    exp = r.mapping(top["experiment"], ("experiment",), ("name", "models", "seq_lens", "configurations", "baseline"),
                    what="the experiment's description", open_keys=True)
    r.names(exp["models"], ("experiment", "models"), "models", allow_csv=False, nonempty=True)
    for i, n in enumerate(exp["seq_lens"] if isinstance(exp["seq_lens"], list) else [None]):
        r.integer(n, ("experiment", "seq_lens", i), low=1, what="a sequence length")
    if not isinstance(exp["configurations"], list):
        raise r.fail(("experiment", "configurations"), "expected a list of configurations")
    for i, c in enumerate(exp["configurations"]):
        r.mapping(c, ("experiment", "configurations", i), ("name",), open_keys=True)
    for key in ("rows", "area_sweep"):
        rows = top.get(key) or []
        if not isinstance(rows, list):
            raise r.fail((key,), f"expected a list of result rows, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            where = (key, i)
            r.mapping(row, where, ("model", "seq_len", "configuration", "scope"), open_keys=True)
            r.string(row["model"], where + ("model",))
            r.integer(row["seq_len"], where + ("seq_len",), low=1, what="a sequence length")
            r.string(row["configuration"], where + ("configuration",))
            r.choice(row["scope"], where + ("scope",), SCOPES, what="scope")
            for metric in ("latency_s", "energy_pj", "util_2d", "util_1d", "area_um2"):
                if row.get(metric) is not None:
                    r.number(row[metric], where + (metric,), low=0)
    return data


def run(args) -> int:
    from einloom.base.errors import CheckFailed, ExperimentError
    from einloom.base.output import output_folder
    from einloom.experiment import load_experiment, run_experiment
    from einloom.report.experiment import load_results, summary_tables, summary_text, write_report

    if args.report_only:
        results_path = Path(args.experiment)
        validate_results(results_path)
        outdir = output_folder(args.output if args.output else results_path.parent, "--output")
        try:
            write_report(results_path, outdir)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ExperimentError(f"not a complete einloom results file ({type(exc).__name__}: {exc})",
                                  location=Location(str(results_path)),
                                  hint="regenerate it with einloom evaluate EXPERIMENT.yaml") from None
        print(summary_text(load_results(results_path)))
        return 0
    experiment = load_experiment(args.experiment)
    outdir = output_folder(args.output or experiment.output, "--output")
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
        print(f"failed: {row['model']} {row['seq_len']} {row['configuration']} {row['scope']}: {row['error']}",
              file=sys.stderr)
    if errors:
        raise CheckFailed(f"{len(errors)} of {len(results.rows) + len(results.sweep_rows)} points failed "
                          f"(listed above; each row's error is in {json_path})",
                          hint="fix the configurations named above; the other points are written")
    return 0

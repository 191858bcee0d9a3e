"""``einloom report sweep DIR``: regenerate a sweep's tables, figures and HTML report from its store."""
from __future__ import annotations

import argparse
import json

EPILOG = """\
examples:
  einloom report sweep results/sweeps/array-buffer
  einloom report sweep results/sweeps/array-buffer --json      (the tables as JSON)

Reads DIR/sweep.db only (works while the sweep is still running: the report covers the points stored
so far) and rewrites DIR/results.csv, results.json, results.parquet (with pyarrow), figures/*.png and
report.html.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="regenerate a report from stored results (einloom report sweep DIR)",
        description="Regenerate reports from stored results.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    sweep = kinds.add_parser("sweep", help="a sweep's output folder", epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("directory", metavar="DIR", help="output folder of an 'einloom sweep' run")
    sweep.add_argument("--json", action="store_true", help="print the report's tables as JSON")
    sweep.set_defaults(func=run_sweep_report)


def run_sweep_report(args) -> int:
    from einloom.report.sweep import load_sweep_data, summary_tables, summary_text, write_report
    written = write_report(args.directory)
    data = load_sweep_data(args.directory)
    if args.json:
        print(json.dumps({"tables": [{"title": t, "headers": h, "rows": r} for t, h, r in summary_tables(data)],
                          "written": [str(p) for p in written]}, indent=1, default=str))
        return 0
    print(summary_text(data))
    print(f"\nwrote {len(written)} files, report: {args.directory}/report.html")
    return 0

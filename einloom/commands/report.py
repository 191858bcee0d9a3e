"""``einloom report``: reports regenerated from stored results.

* ``einloom report sweep DIR``: a sweep's tables, figures and HTML report, from its store;
* ``einloom report crossval --out DIR``: the analytical model against the cycle-level simulator;
* ``einloom report hardware [SPEC...] --arch A``: per variant, the generated core's cycles, area, Fmax
  and throughput side by side (:mod:`einloom.commands.report_hardware`).
"""
from __future__ import annotations

import argparse
import json

EPILOG = """\
examples:
  einloom report sweep results/sweeps/array-buffer
  einloom report sweep results/sweeps/array-buffer --json      (the tables as JSON)
  einloom report crossval --out crossval/ --seqs 1024,4K

'report sweep' reads DIR/sweep.db only (works while the sweep is still running: the report covers the
points stored so far) and rewrites DIR/results.csv, results.json, results.parquet (with pyarrow),
figures/*.png and report.html.  'report crossval' runs the analytical model and the simulator on each
point and writes crossval.md/.html/.png/.json.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write a report (sweep: from a sweep's store; crossval: analytical model vs simulator)",
        description="Regenerate reports from stored results, or cross-validate the models.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    sweep = kinds.add_parser("sweep", help="a sweep's output folder", epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("directory", metavar="DIR", help="output folder of an 'einloom sweep' run")
    sweep.add_argument("--json", action="store_true", help="print the report's tables as JSON")
    sweep.set_defaults(func=run_sweep_report)
    cv = kinds.add_parser("crossval", help="analytical model vs cycle-level simulator per point", epilog=EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    cv.add_argument("--out", required=True, metavar="DIR", help="folder for crossval.md/.html/.png/.json")
    cv.add_argument("--workloads", default="bert,xlm", metavar="W,W", help="workload presets (default bert,xlm)")
    cv.add_argument("--seqs", default="1024,4096,16384,65536", metavar="N,N",
                    help="sequence lengths (default 1024,4096,16384,65536)")
    cv.add_argument("--variants-at", type=int, default=4096, metavar="N",
                    help="sequence length for every library variant under its default mapping (einloom map's: the "
                         "role-found baseline, else a search; 0: none)")
    cv.add_argument("--rtl", default="rtl-4x4-int8,rtl-8x8-int8,rtl-4x4-bf16", metavar="ARCH,ARCH",
                    help="generated-core architectures (names or files) for the simulator-vs-RTL table, "
                         "every 'einloom verify' case of each ('none': leave the table out)")
    cv.set_defaults(func=run_crossval)
    from einloom.commands import report_hardware
    report_hardware.register(kinds)


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


def run_crossval(args) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from einloom.base.errors import InputError, Location
    from einloom.base.output import output_folder
    from einloom.commands import flags
    from einloom.report.crossval import crossval_rows, rtl_arch_path, rtl_rows, write_report

    try:
        seqs = [flags.seq_len(s.strip()) for s in args.seqs.split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        raise InputError(str(exc), location=Location(field="--seqs"), hint="write e.g. 1024,4K,16K") from None
    if not seqs:
        raise InputError("no sequence length given", location=Location(field="--seqs"), hint="write e.g. 1024,4K")
    if args.variants_at < 0:
        raise InputError(f"must be >= 0, got {args.variants_at}", location=Location(field="--variants-at"))
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    from einloom.cost_models.workload import load_workload
    for w in workloads:
        load_workload(w)                      # a bad name fails here, before any simulation
    rtl_configs = [] if args.rtl.strip() == "none" else [c.strip() for c in args.rtl.split(",") if c.strip()]
    for name in rtl_configs:                  # a bad name or file fails here, before any simulation
        if not rtl_arch_path(name).is_file():
            raise InputError(f"no generated-core architecture file {str(rtl_arch_path(name))!r}", location=Location(field="--rtl"),
                             hint="write e.g. rtl-4x4-int8,rtl-8x8-int8 or a path to an rtl-*.yaml, or 'none'")
    rtl = rtl_rows(rtl_configs) if rtl_configs else None
    args.out = str(output_folder(args.out, "--out"))
    bar = tqdm(desc="crossval", unit="point", leave=False)
    rows = crossval_rows(workloads, seqs, args.variants_at or None,
                         progress=lambda label: (bar.set_postfix_str(label), bar.update()))
    bar.close()
    paths = write_report(rows, Path(args.out), rtl)
    for kind, path in paths.items():
        print(f"{kind:9s}{path}")
    return 0

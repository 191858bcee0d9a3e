"""``einloom report``: reports regenerated from runs (``crossval``: analytical model vs simulator)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="write a report (crossval: analytical model vs simulator)",
                                   description="Write a report as Markdown, HTML, a plot and JSON.",
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="examples:\n  einloom report crossval --out crossval/ --seqs 1024,4K\n")
    sub = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    cv = sub.add_parser("crossval", help="analytical model vs cycle-level simulator per point",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="example:\n  einloom report crossval --out crossval/ --seqs 1024,4096")
    cv.add_argument("--out", required=True, metavar="DIR", help="folder for crossval.md/.html/.png/.json")
    cv.add_argument("--workloads", default="bert,xlm", metavar="W,W", help="workload presets (default bert,xlm)")
    cv.add_argument("--seqs", default="1024,4096,16384,65536", metavar="N,N",
                    help="sequence lengths (default 1024,4096,16384,65536)")
    cv.add_argument("--variants-at", type=int, default=4096, metavar="N",
                    help="sequence length for every library variant under the FuseMax mapping (0: none)")
    cv.add_argument("--rtl", default="rtl-4x4-int8,rtl-8x8-int8,rtl-4x4-bf16", metavar="ARCH,ARCH",
                    help="generated-core architectures (names or files) for the simulator-vs-RTL table, "
                         "every 'einloom verify' case of each ('none': leave the table out)")
    cv.set_defaults(func=run_crossval)


def run_crossval(args) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from einloom.base.errors import InputError, Location
    from einloom.base.output import output_folder
    from einloom.commands import flags
    from einloom.errors import EinloomError
    from einloom.report.crossval import crossval_rows, rtl_arch_path, rtl_rows, write_report
    try:
        seqs = [flags.seq_len(s.strip()) for s in args.seqs.split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        raise InputError(str(exc), location=Location(field="--seqs"), hint="write e.g. 1024,4K,16K") from None
    if not seqs:
        raise InputError("no sequence length given", location=Location(field="--seqs"), hint="write e.g. 1024,4K")
    args.out = str(output_folder(args.out, "--out"))
    if args.variants_at < 0:
        raise EinloomError(f"--variants-at must be >= 0, got {args.variants_at}")
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
    bar = tqdm(desc="crossval", unit="point", leave=False)
    rows = crossval_rows(workloads, seqs, args.variants_at or None,
                         progress=lambda label: (bar.set_postfix_str(label), bar.update()))
    bar.close()
    paths = write_report(rows, Path(args.out), rtl)
    for kind, path in paths.items():
        print(f"{kind:9s}{path}")
    return 0

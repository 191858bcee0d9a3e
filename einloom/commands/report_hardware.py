"""``einloom report hardware``: what each attention variant costs in hardware, side by side.

For every cascade (default: the whole library) on every ``--arch`` (with an ``rtl:`` section) it
generates the core the generator chooses (fixed-function, lane core, or refused with the Einsum and
why), and tabulates cycles (the core's cycle model, and the simulator's prediction), 2D utilization,
useful ops, verification (``--verify``), Yosys area, Fmax (``--pnr``) and throughput
(:mod:`einloom.report.hardware`).  Rows are cached, so a rerun is instant and an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  einloom report hardware --arch rtl-4x4-bf16 --ranks P=8,M=12
  einloom report hardware fusemax-1pass causal-1pass alibi --arch rtl-4x4-bf16 --arch rtl-4x4-int8 --out hw/
  einloom report hardware my-variant.yaml --arch examples/archs/rtl-4x4-bf16.yaml --verify --pnr --json

--arch takes a file or a name of examples/archs (rtl-4x4-int8, rtl-8x8-int8, rtl-4x4-bf16).  Ranks not
given come from the core (P, M = rtl.max_queries, max_keys; E, F = rtl.head_dim, value_dim), then from
the cascade's ranks: defaults.  --out DIR writes hardware.json, hardware.csv, hardware.txt and
hardware.png (area vs throughput, one marker per architecture).  Yosys area is on by default (slow the
first time: minutes per design, cached by Verilog hash); --pnr adds nextpnr's Fmax (ECP5; slower still).
Throughput is at Fmax with --pnr, else at the architecture's stated clock_mhz (the table says which).
--programmable-build adds, per architecture, the one programmable lane core that runs every lane-core
variant of the report; --pnr-programmable routes only that build (one P&R per architecture instead of
one per row) and gives its Fmax to the lane rows without their own, the clock column saying so.
"""


def register(kinds: Any) -> None:
    """Add ``hardware`` to ``einloom report``'s kinds."""
    parser = kinds.add_parser(
        "hardware", help="per variant: core generated or refused, cycles, verify, area, Fmax, throughput",
        description="Generate each cascade's core on each architecture and put cycles, 2D utilization, "
                    "verification, FPGA area, Fmax and throughput side by side.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", metavar="SPEC", help="cascades (library names or files; default: "
                        "every library variant)")
    parser.add_argument("--arch", action="append", required=True, metavar="ARCH",
                        help="architecture with an rtl: section (file or examples/archs name); repeatable")
    parser.add_argument("--ranks", default="", metavar="P=..,M=..", help="rank sizes of every row")
    parser.add_argument("--verify", nargs="?", const="verilator", choices=["verilator", "amaranth"],
                        help="simulate each design against its golden model (default tool: verilator, as "
                             "einloom verify; amaranth: the lane core in Amaranth's simulator, the fixed core "
                             "on Verilator, one cached build per architecture)")
    parser.add_argument("--no-synth", action="store_true", help="no Yosys (no area, no Fmax)")
    parser.add_argument("--pnr", action="store_true", help="place and route with nextpnr for Fmax (ECP5)")
    parser.add_argument("--target", default="ecp5", choices=["ecp5", "xilinx", "ice40"], help="FPGA family")
    parser.add_argument("--router", default="auto", choices=["auto", "router2", "router1"],
                        help="nextpnr router (as einloom synth)")
    parser.add_argument("--out", metavar="DIR", help="write hardware.json/.csv/.txt/.png here")
    parser.add_argument("--cache-dir", metavar="DIR", help="row cache (default ~/.cache/einloom/hardware)")
    parser.add_argument("--synth-cache", metavar="DIR", help="synthesis cache (default ~/.cache/einloom/synth)")
    parser.add_argument("--refresh", action="store_true", help="recompute the rows (the synthesis cache stays)")
    parser.add_argument("--cached-only", action="store_true",
                        help="compute nothing: show the rows the cache holds for these options (e.g. of a "
                             "report still running in another shell); the others are listed as pending")
    parser.add_argument("--programmable-build", action="store_true",
                        help="per architecture, also build one programmable lane core that runs every lane-core "
                             "variant of the report (its area; with --pnr its Fmax, which the lane rows without a "
                             "P&R of their own then take for their throughput)")
    parser.add_argument("--pnr-programmable", action="store_true",
                        help="place and route the programmable lane build only (implies --programmable-build)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    parser.set_defaults(func=run)


def arch_path(name: str) -> Path:
    """A file path, or a name of ``examples/archs/``."""
    path = Path(name)
    if path.suffix or "/" in name:
        return path
    return Path(__file__).resolve().parents[2] / "examples" / "archs" / f"{name}.yaml"


def check_inputs(args: Any) -> tuple[list[str], list[str], dict[str, int]]:
    """Specs, architecture paths and ranks, each checked before any work (one-line errors)."""
    from einloom.base.errors import InputError, Location
    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.einsum.loader import library_names
    from einloom.einsum.ranks import parse_rank_assignments
    from einloom.report.hardware import RowOptions
    ranks = parse_rank_assignments(args.ranks)
    specs = list(args.specs) or library_names()
    for spec in specs:
        load_cascade(spec)
    archs = []
    for name in args.arch:
        path = arch_path(name)
        if not path.is_file():
            raise InputError(f"no architecture file {str(path)!r}", location=Location(field="--arch"),
                             hint="give an rtl-*.yaml file or a name of examples/archs, e.g. rtl-4x4-int8")
        arch = load_arch(str(path))
        if arch.rtl is None:
            raise InputError(f"{path} has no rtl: section (no generated core to report)",
                             location=Location(file=str(path), field="rtl"),
                             hint="use an architecture with an rtl: section, e.g. examples/archs/rtl-4x4-int8.yaml")
        archs.append(str(path))
    if args.refresh and args.cached_only:
        raise InputError("--refresh recomputes what --cached-only only reads", location=Location(field="--refresh"),
                         hint="give one of them")
    if args.no_synth and args.pnr:
        raise InputError("--pnr needs synthesis", location=Location(field="--pnr"), hint="drop --no-synth or --pnr")
    if args.pnr and args.target != "ecp5":
        raise InputError(f"no place and route for {args.target}", location=Location(field="--pnr"),
                         hint="Fmax is measured on ecp5 only; drop --pnr or use --target ecp5")
    if args.no_synth and (args.programmable_build or args.pnr_programmable):
        flag = "--pnr-programmable" if args.pnr_programmable else "--programmable-build"
        raise InputError(f"{flag} needs synthesis", location=Location(field=flag),
                         hint=f"drop --no-synth or {flag}")
    if args.pnr_programmable and args.target != "ecp5":
        raise InputError(f"no place and route for {args.target}", location=Location(field="--pnr-programmable"),
                         hint="Fmax is measured on ecp5 only; drop --pnr-programmable or use --target ecp5")
    args.programmable_build = args.programmable_build or args.pnr_programmable
    args.options = RowOptions(verify=args.verify, synth=not args.no_synth, pnr=args.pnr, target=args.target,
                              router=args.router)
    return specs, archs, ranks


def collect(specs: list[str], archs: list[str], ranks: dict[str, int], args: Any) -> list[dict[str, Any]]:
    """Every (spec, arch) row, from the cache where stored (each row is stored as soon as it is done)."""
    from tqdm import tqdm

    from einloom.report import hardware
    from einloom.report.hardware_cache import RowCache, default_cache_dir
    cache = RowCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir(), args.options)
    pairs = [(s, a) for a in archs for s in specs]
    rows = []
    bar = tqdm(pairs, desc="hardware", unit="design", file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty() and len(pairs) < 2)
    for spec, arch in bar:
        label = f"{Path(spec).stem} @ {Path(arch).stem}"
        key = cache.key(spec, arch, ranks)
        row = None if args.refresh else cache.load(key)
        if row is None and args.cached_only:
            rows.append(pending_row(spec, arch))
            continue
        if row is None:
            bar.set_postfix_str(label)
            row = hardware.hardware_row(spec, arch, ranks, args.options, synth_cache=args.synth_cache,
                               progress=lambda stage, label=label: bar.set_postfix_str(f"{label}: {stage}"))
            if not row.errors:          # a tool failure is retried by the next run, not remembered
                cache.store(key, row)
        rows.append(row.to_dict())
    bar.close()
    if args.programmable_build:
        for arch in archs:
            rows.append(collect_programmable(specs, arch, ranks, args))
            hardware.apply_shared_fmax(rows, rows[-1])
    return rows


def collect_programmable(specs: list[str], arch: str, ranks: dict[str, int], args: Any) -> dict[str, Any]:
    """The programmable lane build's row of ``arch`` (cached as the others; routed with --pnr or
    --pnr-programmable)."""
    from dataclasses import replace

    from einloom.report import hardware
    from einloom.report.hardware_cache import RowCache, default_cache_dir
    options = replace(args.options, verify=None, pnr=args.options.pnr or args.pnr_programmable)
    cache = RowCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir(), options)
    key = cache.key_programmable(specs, arch, ranks)
    row = None if args.refresh else cache.load(key)
    if row is None and args.cached_only:
        return hardware.HardwareRow(spec="programmable lane build", arch=Path(arch).stem, core="pending").to_dict()
    if row is None:
        label = f"programmable lane build @ {Path(arch).stem}"
        print(f"{label}: synthesizing" + (" and routing" if options.pnr else ""), file=sys.stderr, flush=True)
        row = hardware.programmable_row(specs, arch, ranks, options, synth_cache=args.synth_cache,
                                        progress=lambda stage: print(f"{label}: {stage}", file=sys.stderr, flush=True))
        if not row.errors:
            cache.store(key, row)
    return row.to_dict()


def pending_row(spec: str, arch: str) -> dict[str, Any]:
    """A row ``--cached-only`` did not find: named, marked pending, with no figures."""
    from einloom.einsum import load_cascade
    from einloom.report.hardware import HardwareRow
    return HardwareRow(spec=load_cascade(spec).name, arch=Path(arch).stem, core="pending").to_dict()


def write_outputs(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """hardware.json, .csv, .txt and .png (the figure when some row has area and throughput)."""
    from einloom.base.output import write_text
    from einloom.report.hardware_output import plot, report_text, to_csv
    written = [write_text(folder / "hardware.json", json.dumps({"rows": rows}, indent=1, default=str) + "\n", "--out"),
               write_text(folder / "hardware.csv", to_csv(rows), "--out"),
               write_text(folder / "hardware.txt", report_text(rows) + "\n", "--out")]
    figure = plot(rows, folder / "hardware.png")
    return written + ([figure] if figure else [])


def run(args: Any) -> int:
    from einloom.base.output import output_folder, probe
    from einloom.report.hardware_output import report_text
    specs, archs, ranks = check_inputs(args)
    folder = None
    if args.out is not None:
        folder = output_folder(args.out, "--out")
        probe(folder / "hardware.json", "--out")
    rows = collect(specs, archs, ranks, args)
    written = write_outputs(rows, folder) if folder is not None else []
    if args.json:
        print(json.dumps({"rows": rows, "written": [str(p) for p in written]}, indent=1, default=str))
        return 0
    print(report_text(rows))
    cached = sum(1 for r in rows if r.get("cached"))
    print(f"\n{len(rows)} rows ({cached} from the cache)" + (f"; wrote {', '.join(str(p) for p in written)}"
                                                           if written else ""))
    return 0

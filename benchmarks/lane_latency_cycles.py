"""The lane core's cycles per library variant from its cycle model alone (no simulation): what the
lanes' unit latencies (``rtl/lanes/units.schedule_latency``) cost in cycles, per architecture.

    python benchmarks/lane_latency_cycles.py [--arch A.yaml ...] [--ranks P=8,M=12,E=8,F=8] [--json F]

For each variant the lane compiler accepts: ``einloom.report.hardware.lane_design`` (the lane core's
plan, its image encoded with the lanes' latencies, ``sim/rtl_core.lane_core_cycles``), the lane
units it uses and the cycles; the RTL tests check the model against the simulated core.  Run it on two
commits to see what a change of the units' latencies costs (docs/lane-core.md, "Lane units").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHS = [ROOT / "examples/archs/rtl-4x4-int8.yaml", ROOT / "examples/archs/rtl-4x4-bf16.yaml"]


def main(argv: list[str] | None = None) -> int:
    from einloom.cost_models import load_arch
    from einloom.einsum import load_cascade
    from einloom.einsum.errors import EinloomError
    from einloom.einsum.loader import library_names
    from einloom.einsum.ranks import parse_rank_assignments
    from einloom.report.hardware import _defaults, lane_design
    from einloom.report.table import format_table
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", default=[])
    ap.add_argument("--ranks", default="P=8,M=12,E=8,F=8")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sizes = parse_rank_assignments(args.ranks)
    rows, records = [], []
    for arch_path in [Path(a) for a in args.arch] or ARCHS:
        arch = load_arch(str(arch_path))
        for spec in args.only or library_names():
            cascade = load_cascade(spec)
            try:
                d = lane_design(cascade, arch, _defaults(cascade, sizes, arch))
            except EinloomError as exc:
                records.append({"variant": spec, "arch": arch_path.stem, "refused": exc.message})
                continue
            records.append({"variant": spec, "arch": arch_path.stem, "cycles": d.cycles, "util_2d": d.util_2d,
                            "units": d.units})
            rows.append([spec, arch_path.stem, f"{d.cycles:,}", f"{d.util_2d:.1%}", ", ".join(d.units)])
            print(f"{spec} @ {arch_path.stem}: {d.cycles}", file=sys.stderr, flush=True)
    print(format_table(["variant", "arch", "cycles (model)", "2D busy", "lane units"], rows,
                       title=f"lane core cycles, {args.ranks}"))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

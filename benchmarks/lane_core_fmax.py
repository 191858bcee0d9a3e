"""ECP5 area and post-route Fmax of the programmable lane core of an architecture: the one build that
runs every library variant the lane compiler accepts on it (``einloom.report.hardware.programmable_row``,
what ``einloom report hardware --pnr-programmable`` adds as a row).

    python benchmarks/lane_core_fmax.py [--arch examples/archs/rtl-2x2-int8.yaml] [--ranks P=8,M=12]
                                        [--no-pnr] [--json out.json]

Prints the variants in the build (and those left out, with the reason), LUT/FF/DSP/BRAM/carry, the
part, Fmax, the critical path and the tools' seconds.  Yosys ``synth_ecp5`` then nextpnr-ecp5 in the I/O
harness, seed 1, 100 MHz target, the smallest part that fits; one seed is one sample.  Results are
cached by Verilog hash (``~/.cache/einloom/synth``), so ``einloom report hardware --pnr-programmable``
on the same architecture and ranks reuses them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from einloom.einsum.loader import library_names
from einloom.einsum.ranks import parse_rank_assignments
from einloom.report.hardware import RowOptions, programmable_row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="examples/archs/rtl-2x2-int8.yaml")
    ap.add_argument("--ranks", default="P=8,M=12")
    ap.add_argument("--no-pnr", action="store_true", help="area only")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    row = programmable_row(library_names(), args.arch, parse_rank_assignments(args.ranks),
                           RowOptions(synth=True, pnr=not args.no_pnr),
                           progress=lambda stage: print(f"[{time.monotonic() - t0:7.0f} s] {stage}", file=sys.stderr,
                                                        flush=True))
    print(f"{row.spec}\n  on {row.arch} ({row.number_format}, {row.array}); lane units: {', '.join(row.units)}")
    for name, why in row.left_out.items():
        print(f"  left out: {name}: {why}")
    area = row.area or {}
    print(f"  LUT {area.get('luts')} FF {area.get('ffs')} DSP {area.get('dsps')} BRAM {area.get('brams')} "
          f"carry {area.get('carry')} part {row.part}; Fmax {row.fmax_mhz} MHz; seconds {row.seconds}")
    if row.critical_path:
        cp = row.critical_path
        print(f"  critical path {cp.get('ns')} ns ({cp.get('logic_ns')} logic, {cp.get('routing_ns')} routing): "
              f"{cp.get('from')} -> {cp.get('to')}")
    for e in row.errors:
        print(f"  error: {e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(row.to_dict(), fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())

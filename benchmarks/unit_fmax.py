"""Post-route ECP5 Fmax of each datapath unit of the attention core, placed and routed alone.

    python benchmarks/unit_fmax.py [--format bf16|int8|all] [--only NAME ...] [--dsp ecp5|model] [--json out.json]

Each unit is built as the core builds it (``einloom.rtl.units.units_for`` of the shipped architecture
file's number format; bf16 with ``acc_latency`` 4 for the pipelined accumulate) and run through
``einloom.rtl.fpga.synthesize`` (Yosys ``synth_ecp5``, nextpnr-ecp5 in the I/O harness, seed 1, 100 MHz
target, smallest part that fits).  ``single-cycle-acc`` is the fp32 accumulate as today's PE and the 1D
array's SLD build it (one combinational adder in a loop), for comparison; ``pe`` is one 2D-array
processing element.  The multipliers are built as ``einloom synth --target ecp5`` builds them
(``--dsp ecp5``, default: MULT18X18D with their own registers, :mod:`einloom.rtl.units.dsp`) or as
the behavioural model that Yosys maps itself (``--dsp model``: the registers in the fabric).  Prints latency, area, Fmax
and the critical path per unit; one seed is one sample.  Results are cached (``~/.cache/einloom/synth``).
"""
from __future__ import annotations

import argparse
import json
import time

from amaranth.back import verilog

from einloom.rtl.config import RtlConfig
from einloom.einsum.errors import ToolError
from einloom.rtl.float.accumulate import Fp32Accumulator
from einloom.rtl.float.add import Fp32Add
from einloom.rtl.fpga.flow import synthesize
from einloom.rtl.fpga.tools import ensure_amaranth_yosys
from einloom.rtl.mesh import SystolicArray
from einloom.rtl.pe import ProcessingElement
from einloom.rtl.units import units_for
from einloom.rtl.units.dsp import dsp_primitives
from einloom.sim.formats import make_format


def units_of(kind: str) -> dict:
    """name -> factory of the units of ``kind`` ("bf16" or "int8")."""
    if kind == "bf16":
        cfg = RtlConfig.from_yaml("examples/archs/rtl-4x4-bf16.yaml")
        fmt = make_format({**cfg.format_spec, "acc_latency": 4}, head_dim=cfg.head_dim, scale=cfg.scale,
                          max_keys=cfg.max_keys)
    else:
        cfg = RtlConfig.from_yaml("examples/archs/rtl-4x4-int8.yaml")
        fmt = cfg.fmt
    u = units_for(fmt)
    out = {f"{kind}-accumulate": u.accumulate_unit, f"{kind}-exp": u.exp_unit, f"{kind}-recip": u.recip_unit,
           f"{kind}-rescale": lambda: u.rescale_unit("acc"), f"{kind}-output": u.output_unit,
           f"{kind}-pe": lambda: ProcessingElement(u)}
    if kind == "bf16":
        out["bf16-add"] = Fp32Add                 # one fp32 adder, 4 stages (every fp32 add of the core)
        out["bf16-single-cycle-acc"] = lambda: Fp32Accumulator(latency=1)
        # two 2D PEs of a column with their pipelined accumulate (the OS loop, the WS psum hop from the
        # PE above) and the column's combine of the L partials (a PE alone has multi-value ports)
        out["bf16-array-2x1"] = lambda: SystolicArray(u, 2, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", choices=["bf16", "int8", "all"], default="all")
    ap.add_argument("--only", nargs="*", default=None, help="unit names (e.g. bf16-exp)")
    ap.add_argument("--dsp", choices=["ecp5", "model"], default="ecp5",
                    help="multipliers as instantiated MULT18X18D with registers (default) or the behavioural model")
    ap.add_argument("--json")
    args = ap.parse_args()
    ensure_amaranth_yosys()
    factories = {}
    for kind in (["bf16", "int8"] if args.format == "all" else [args.format]):
        factories.update(units_of(kind))
    rows = {}
    for name, make in factories.items():
        if args.only and name not in args.only:
            continue
        top = "unit_" + name.replace("-", "_")
        start = time.monotonic()
        with dsp_primitives(args.dsp):
            unit = make()
            text = verilog.convert(unit, name=top)
        try:
            res = synthesize(text, top, "ecp5")
        except ToolError as exc:                  # one unit's tool failure does not end the table
            rows[name] = {"dsp": args.dsp, "error": exc.message}
            print(f"{name:24s} failed: {exc.message}", flush=True)
            continue
        path = (res.pnr or {}).get("critical_path") or {}
        rows[name] = {"dsp": args.dsp, "latency": getattr(unit, "latency", getattr(unit, "MAC_LATENCY", None)), "counts": dict(res.resources.counts),
                      "part": res.part, "fmax_mhz": res.fmax_mhz, "critical_path": path,
                      "seconds": dict(res.seconds), "wall_s": round(time.monotonic() - start, 1)}
        c = res.resources.counts
        where = f"{path.get('ns', 0):.1f} ns ({path.get('logic_ns', 0):.1f} logic): {path.get('from')} -> {path.get('to')}"
        print(f"{name:24s} L={rows[name]['latency']!s:3s} LUT {c.get('luts', 0):6g} FF {c.get('ffs', 0):6g} "
              f"DSP {c.get('dsps', 0):3g}  {res.part}  Fmax {res.fmax_mhz:6.1f} MHz  {where}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

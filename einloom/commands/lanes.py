"""``einloom lanes SPEC --arch A``: compile the 1D array's Einsums into a lane program and show it."""
from __future__ import annotations

import argparse
import json

from einloom.report.table import format_table

EXAMPLE = """example:
  einloom lanes fusemax-1pass --arch examples/archs/rtl-4x4-int8.yaml --ranks P=64,M=256,E=16,F=16
  einloom lanes sliding-window --arch examples/archs/rtl-4x4-int8.yaml --listing --check
  einloom lanes my-variant.yaml --arch A.yaml --verilog lane.v --also fusemax-1pass   # programmable lane
  einloom lanes causal-1pass --arch A.yaml --json > program.json"""

FORMATS = {"int8": {"kind": "fixed", "input_bits": 8, "frac_bits": 4, "acc_bits": 32},
           "int16": {"kind": "fixed", "preset": "int16"}, "bf16": {"kind": "bf16"}}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lanes", help="compile the Einsums bound to the 1D array into a lane program (ISA listing, cycles, RTL)",
        description="Bind the cascade's multiply-accumulate products to the 2D array and everything else to the "
                    "1D lanes (one per query column), compile the lanes' Einsums into a sectioned program (per "
                    "score, per tile, per weight, per value column, per block), and print its sections, "
                    "registers, functional units and cycles per query block.  --check runs the program on "
                    "random inputs and compares it bit for bit with the whole cascade interpreted in the number "
                    "format; --verilog writes the Amaranth lane (bf16 format) that executes it.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="spec file (.yaml) or library variant name")
    parser.add_argument("--arch", required=True, help="architecture YAML (the 2D array's rows are the key tile R)")
    parser.add_argument("--ranks", default="", help="rank sizes, e.g. P=64,M=256,E=16,F=16 (default: the spec's)")
    parser.add_argument("--latency", choices=("arch", "rtl"), default=None,
                        help="unit latencies for the cycle counts: the architecture's 1D units or the RTL lane's "
                             "(default: rtl with --format bf16, else arch)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="bf16", help="number format for --check")
    parser.add_argument("--check", action="store_true",
                        help="run the program on random inputs and compare with the interpreter, bit for bit")
    parser.add_argument("--listing", action="store_true", help="print the program's assembly")
    parser.add_argument("--verilog", metavar="FILE", help="write the lane's Verilog (bf16 format)")
    parser.add_argument("--also", action="append", default=[], metavar="SPEC",
                        help="with --verilog: a programmable lane that also runs this spec's program (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the program and its cycles as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from einloom.cost_models import load_arch
    from einloom.einsum.loader import load_cascade
    from einloom.einsum.ranks import parse_rank_assignments
    from einloom.rtl.lanes.compile import arch_latency
    from einloom.rtl.lanes.execute import build
    from einloom.rtl.lanes.units import schedule_latency

    arch = load_arch(args.arch)
    sizes = parse_rank_assignments(args.ranks) if args.ranks else None
    cascade = load_cascade(args.spec)
    program, schedule = build(cascade, arch, sizes)
    mode = args.latency or ("rtl" if args.format == "bf16" else "arch")
    latency = schedule_latency() if mode == "rtl" else arch_latency(arch)
    tiles = program.structure.tiles
    block = program.block_cycles(tiles, latency)
    data = {"program": program.to_dict(), "latency": dict(latency), "latency_source": mode, "tiles": tiles,
            "cycles_per_section": block, "cycles_per_block": sum(block.values())}
    if args.check:
        data["check"] = _check(cascade, program, schedule, args.format)
    if args.verilog:
        data["verilog"] = _verilog(args, program, arch, sizes)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0 if data.get("check", {}).get("equal", True) else 1
    st = program.structure
    print(f"{cascade.name}: lane rank {st.lane}, key tile {st.key} R = {program.tile}"
          f"{f' (tiles over {st.outer})' if st.outer else ' (hardware tiles of the whole key rank)'}, "
          f"F = {program.values}, {tiles} tiles per query block")
    print(f"2D products: scores {', '.join(program.scores)}; values "
          + ", ".join(c.einsum + (" (continued across tiles)" if c.carry else "") for c in program.chains))
    print(f"units: {', '.join(program.units())}; registers: "
          + ", ".join(f"{sum(1 for r in program.regs if r.kind == k)} {k}" for k in ("scalar", "tile", "value",
                                                                                     "pred", "coord")))
    rows = []
    for name in block:
        sec = program.section(name)
        if not sec.instrs:
            continue
        sched = sec.schedule(latency)
        runs = {"k": f"x{program.tile} per tile", "f": f"x{program.values}" + (" per tile" if name == "value" else ""),
                "": "per tile" if name in ("begin", "tile", "merge", "commit") else "once"}[sec.index]
        rows.append([name, runs, len(sec.instrs), sched.ii, sched.end, block[name]])
    print(format_table(["section", "runs", "instructions", "II", "end", "cycles/block"], rows,
                       title=f"cycles ({mode} latencies): {sum(block.values()):,} per query block"))
    if args.listing:
        print(program.listing())
    if args.check:
        c = data["check"]
        print(f"check ({args.format}): lanes vs interpreter bit for bit on {c['elements']} output elements: "
              + ("equal" if c["equal"] else f"{c['differ']} differ"))
    if args.verilog:
        v = data["verilog"]
        print(f"wrote {v['path']} (top {v['top']}, {'programmable, ' if v['programmable'] else ''}"
              f"{v['registers']} registers, units {', '.join(v['units'])})")
    return 0 if data.get("check", {}).get("equal", True) else 1


def _check(cascade, program, schedule, fmt_name: str) -> dict:
    import numpy as np

    from einloom.rtl.lanes.execute import against_interpreter
    from einloom.sim.formats import make_format
    from einloom.sim.formats.arith import arith_for
    feature = program.structure.value
    fmt = make_format(FORMATS[fmt_name], head_dim=schedule.sizes.get(feature, 16))
    rng = np.random.default_rng(0)
    inputs = {t: fmt.quantize(rng.normal(0.0, 1.0, [schedule.sizes[r] for r in cascade.tensors[t].ranks]))
              for t in cascade.inputs}
    run, ref = against_interpreter(program, cascade, schedule, arith_for(fmt), inputs)
    differ = sum(int((run.codes[o] != ref.codes[o]).sum()) for o in cascade.outputs)
    elements = sum(int(ref.codes[o].size) for o in cascade.outputs)
    return {"format": fmt_name, "equal": differ == 0, "differ": differ, "elements": elements}


def _verilog(args, program, arch, sizes) -> dict:
    from einloom.base.output import output_file
    from einloom.einsum.loader import load_cascade
    from einloom.rtl.lanes.execute import build
    from einloom.rtl.lanes.generate import generate_lane
    programs = [program] + [build(load_cascade(s), arch, sizes)[0] for s in args.also]
    design = generate_lane(programs, programmable=bool(args.also), top="lane")
    path = output_file(args.verilog, "--verilog", default_name="lane.v")
    with open(path, "w") as fh:
        fh.write(design.verilog)
    return {"path": str(path), "top": design.top, "programmable": design.programmable,
            "registers": design.shape.registers, "units": list(design.shape.units)}

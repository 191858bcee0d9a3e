"""``einloom rtl --arch ARCH.yaml -o DIR``: generate the attention core's Verilog and manifest."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLE = """example:
  einloom rtl --arch examples/archs/rtl-4x4-int8.yaml -o build/
  einloom rtl --arch examples/archs/rtl-8x8-int8.yaml -o build/ --lint --json"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rtl", help="generate synthesizable Verilog of the 1-pass attention core",
        description="Generate the attention core (2D MAC array + 1D softmax array + buffers + controller) "
                    "for the architecture's rtl: section; write <top>.v and manifest.json (parameters, "
                    "ports, stream layouts, expected cycle counts).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", required=True, help="architecture YAML with an rtl: section")
    parser.add_argument("-o", "--output", default="build", help="output directory (default: build)")
    parser.add_argument("--lint", action="store_true", help="also run 'verilator --lint-only -Wall'")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from einloom.einsum.errors import ToolError
    from einloom.rtl import RtlConfig, generate
    from einloom.base.output import output_folder
    out = output_folder(args.output, "--output")
    cfg = RtlConfig.from_yaml(args.arch)
    design = generate(cfg)
    vpath, mpath = design.write(out)
    lint_ok = None
    if args.lint:
        from einloom.rtl.tb.runner import WAIVERS, lint
        lint_ok, text = lint(vpath, design.top_name)
        design.manifest["lint"] = {"clean": lint_ok, "waivers": WAIVERS.name}
        Path(mpath).write_text(json.dumps(design.manifest, indent=2) + "\n")
        if not lint_ok:
            raise ToolError(f"verilator lint of {vpath} is not clean:\n{text.strip()[:2000]}")
    if args.json:
        print(json.dumps(design.manifest, indent=2))
        return 0
    lat = design.manifest["latency"]
    print(f"{design.top_name}: {cfg.rows}x{cfg.cols} array, E={cfg.head_dim} F={cfg.value_dim}, "
          f"{cfg.fmt.kind} {cfg.fmt.input_bits}-bit in / {cfg.fmt.output_bits}-bit out")
    print(f"  wrote {vpath} ({len(design.verilog.splitlines()):,} lines) and {mpath}")
    for ex in lat["examples"]:
        print(f"  expected compute cycles P={ex['P']} M={ex['M']} causal={ex['causal']}: "
              f"{ex['compute_cycles']:,}")
    if lint_ok:
        print("  verilator --lint-only -Wall: clean")
    return 0

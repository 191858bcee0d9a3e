"""``einloom check SPEC``: validate a cascade and print its analyses."""
from __future__ import annotations

import argparse
import json

from einloom.einsum.analysis import analyse
from einloom.einsum.loader import load_cascade
from einloom.einsum.ranks import parse_rank_assignments
from einloom.report.table import format_table

EXAMPLE = """example:
  einloom check fusemax-1pass --ranks P=1024,M=1024,E=64,F=64
  einloom check my-spec.yaml --json > analysis.json
  einloom check softmax-3pass --dot dag.dot"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="validate a cascade spec and analyse it (passes, footprints, op counts)",
        description="Validate a cascade (a spec file or a library variant name) and print its Einsums, "
                    "dependency DAG, pass count per rank, footprints that grow with sequence length, and "
                    "op counts per Einsum and per operator class.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="spec file (.yaml) or library variant name (see 'einloom check --list')",
                        nargs="?")
    parser.add_argument("--ranks", default="", help="rank sizes, e.g. P=1024,M=1024,E=64,F=64 "
                                                    "(default: the spec's ranks:)")
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON")
    parser.add_argument("--dot", metavar="FILE", help="write the dependency DAG as Graphviz dot")
    parser.add_argument("--list", action="store_true", help="list the library variants with their pass counts")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.list or not args.spec:
        return list_library(args)
    from einloom.base.output import output_file
    dot_path = output_file(args.dot, "--dot", default_name="cascade.dot") if args.dot is not None else None
    cascade = load_cascade(args.spec)
    analysis = analyse(cascade, parse_rank_assignments(args.ranks) or None)
    if dot_path is not None:
        write_dot(analysis, str(dot_path))
    if args.json:
        print(json.dumps(analysis.to_dict(), indent=2))
        return 0
    print(render(cascade, analysis))
    return 0


def list_library(args) -> int:
    from einloom.einsum.loader import library_names
    rows = []
    for name in library_names():
        cascade = load_cascade(name)
        analysis = analyse(cascade)
        rows.append([name, analysis.passes.get(cascade.sequence_rank), len(cascade.einsums),
                     cascade.source.split(",")[0] if cascade.source else ""])
    if getattr(args, "json", False):
        print(json.dumps([dict(zip(["name", "passes", "einsums", "source"], r)) for r in rows], indent=2))
    else:
        print(format_table(["variant", "passes", "einsums", "source"], rows))
    return 0


def write_dot(analysis, path: str) -> None:
    lines = ["digraph cascade {", "  rankdir=LR;"]
    for node, data in analysis.graph.nodes(data=True):
        shape = {"input": "box", "output": "doubleoctagon"}.get(data.get("role"), "ellipse")
        lines.append(f'  "{node}" [shape={shape}];')
    for a, b, data in analysis.graph.edges(data=True):
        style = {"carried": "dashed", "final": "bold"}.get(data["kind"], "solid")
        lines.append(f'  "{a}" -> "{b}" [style={style}];')
    lines.append("}")
    from einloom.base.output import write_text
    write_text(path, "\n".join(lines) + "\n", "--dot", default_name="cascade.dot")


def render(cascade, analysis) -> str:
    out = [f"{cascade.name}: {len(cascade.einsums)} Einsums, valid"]
    if cascade.source:
        out.append(f"source: {cascade.source}")
    if analysis.rank_sizes:
        out.append("ranks: " + ", ".join(f"{k}={v}" for k, v in analysis.rank_sizes.items()))
    seq = analysis.sequence_rank
    out.append("")
    rows = []
    for e in analysis.einsums:
        ops = ", ".join(f"{k} {v}" for k, v in e.op_formulas.items()) or "(data movement)"
        count = sum((e.op_counts or {}).values()) if e.op_counts is not None else None
        rows.append([e.name, e.text, ",".join(e.reduced_ranks) or "-", e.iterative_rank or "-",
                     e.levels.get(seq, 0), ops, count])
    out.append(format_table(["einsum", "expression", "reduces", "iter", f"pass({seq})", "ops (formula)",
                             "ops"], rows, align="llllrlr"))
    out.append("")
    out.append("passes: " + ", ".join(f"{rank}: {n}" for rank, n in analysis.passes.items())
               + f"   -> {analysis.passes.get(seq, 0)}-pass over {seq}")
    out.append("")
    rows = [[f.tensor, ",".join(f.ranks), f.elements, ",".join(f.grows_with) or "-", f.live_elements_formula]
            for f in analysis.footprints]
    out.append(format_table(["intermediate", "ranks", "elements", "held along (grows with)", "live footprint"],
                            rows, title="footprints"))
    out.append("")
    rows = [[k, analysis.op_totals_formula[k], (analysis.op_totals or {}).get(k)] for k in analysis.op_totals_formula]
    out.append(format_table(["op class", "formula", "count"], rows, title="op counts"))
    out.append("")
    edges = [f"{a}->{b}" + ("" if d["kind"] == "same" else f" ({d['kind']})")
             for a, b, d in analysis.graph.edges(data=True)]
    out.append("dependency DAG: " + ", ".join(edges))
    return "\n".join(out)

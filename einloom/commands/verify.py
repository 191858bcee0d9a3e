"""``einloom verify --arch ARCH.yaml``: simulate the generated core against the golden model."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from einloom.commands import flags

EXAMPLE = """example:
  einloom verify --arch examples/archs/rtl-4x4-int8.yaml
  einloom verify --arch examples/archs/rtl-8x8-int8.yaml --quick --json > verify.json
  einloom verify --arch examples/archs/rtl-4x4-int8.yaml --shape 64x64 --shape 32x128c

The first run of a design builds its Verilator model (a few minutes; progress on stderr), cached
under ~/.cache/einloom/verilator for later runs.  --shape PxM must fit the arch's buffers
(rtl.max_queries >= P, rtl.max_keys >= M)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="run the cocotb/Verilator testbenches of the generated core (bit-exact)",
        description="Generate the core for ARCH, build it with Verilator (cached per design) and run the "
                    "testbench cases (ragged tiles, causal masking, backpressure, M=P=64) against the "
                    "number format's golden model; print pass/fail and cycles per case.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", metavar="SPEC",
                        help="the cascade (default: the fixed-function core's whole suite, every mask); a cascade "
                             "the core builds runs the cases of its own mask (none, causal, or its window and "
                             "sinks); GQA/MQA runs its folded heads; a cascade that core cannot build runs on "
                             "the lane core (2D array + programmable lanes)")
    parser.add_argument("--arch", required=True, help="architecture YAML with an rtl: section")
    parser.add_argument("--ranks", default="", metavar="P=..,M=..",
                        help="lane core: rank sizes of the runs (default: the buffers' and rtl: sizes)")
    parser.add_argument("--also", action="append", default=[], metavar="SPEC",
                        help="lane core: one programmable build runs SPEC, then each --also (program "
                             "loaded at run time), then SPEC again; repeatable")
    from einloom.commands.rtl import add_mapping_flags
    add_mapping_flags(parser, "verify")
    parser.add_argument("--workload", help="workload the mapping is lowered for (as einloom rtl)")
    parser.add_argument("--seq-len", type=flags.seq_len, metavar="N", help="the workload's sequence length")
    parser.add_argument("--quick", action="store_true", help="skip the M=P=64 cases")
    parser.add_argument("--shape", action="append", default=[], metavar="PxM[c][wW[sS]]",
                        help="run this shape instead of the default cases (suffix c = causal, bottom-right "
                             "aligned: query p sees key m iff m <= p + M - P; wW[sS]: only the last W keys up "
                             "to that diagonal, plus the first S sink keys); repeatable")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--verbose", action="store_true", help="show Verilator and cocotb output")
    parser.set_defaults(func=run)


def _verify_lanes(args, arch, plans) -> int:
    """The lane core's verify; with --mapping/--search, the mapping it implements is checked (and
    chosen) first and reported (rtl/lane_check.py)."""
    from einloom.commands import lane_cli
    from einloom.commands.rtl import lane_mapping_for
    report = lane_mapping_for(args, arch, plans)
    for line in (report or {}).get("lines", []):
        print(line, file=sys.stderr if args.json else sys.stdout)
    return lane_cli.verify_lanes(args, arch, plans)


def parse_shape(text: str, index: int) -> dict:
    """``PxM``, ``PxMc`` (causal) or ``PxMwW[sS]`` (the causal band of the last W keys, plus S sink keys:
    the core's window and sinks inputs, as sliding-window and sinks-window set them)."""
    import re

    from einloom.einsum.errors import EinloomError, Location
    found = re.fullmatch(r"(\d{1,8})x(\d{1,8})(c?)(?:w(\d{1,8})(?:s(\d{1,8}))?)?", text.strip().lower())
    if found is None or int(found.group(1)) < 1 or int(found.group(2)) < 1 or found.group(4) == "0":
        raise EinloomError(f"bad shape {text!r}", location=Location(field="--shape"),
                           hint="write PxM, e.g. 64x64, 64x64c for causal, or 64x64w24s4 for a causal window "
                                "of 24 keys plus 4 sink keys")
    p, m = int(found.group(1)), int(found.group(2))
    window, sinks = int(found.group(4) or 0), int(found.group(5) or 0)
    causal = bool(found.group(3)) or window > 0
    case = {"name": f"shape{index}_{text.strip().lower()}", "P": p, "M": m, "causal": causal, "seed": 7 + index}
    if window:
        case.update(window=window, sinks=sinks)
    return case


def _mask(case: dict) -> str:
    text = "causal" if case.get("causal") else "none"
    if case.get("window"):
        text += f", window {case['window']}" + (f" + {case['sinks']} sinks" if case.get("sinks") else "")
    return text


def run(args) -> int:
    from einloom.einsum.errors import EinloomError, Location
    from einloom.report.table import format_table
    from einloom.rtl import RtlConfig
    from einloom.rtl.tb.suite import default_cases, run_suite
    from einloom.commands import lane_cli
    from einloom.cost_models.arch import load_arch
    from einloom.einsum.errors import SpecError
    arch = load_arch(args.arch)
    if lane_cli.wants_lanes(args, arch):
        return _verify_lanes(args, arch, lane_cli.plans_for(args, arch))
    roles = None
    if args.spec is not None:
        from einloom.einsum import load_cascade
        from einloom.rtl.core_form import match_core
        try:
            roles = match_core(load_cascade(args.spec), scale=True)
        except SpecError as exc:
            if args.workload:
                raise
            return _verify_lanes(args, arch, lane_cli.plans_for(args, arch, exc))
    folded = roles is not None and bool(roles.heads or roles.query_groups)
    search_info = None
    if args.mapping or args.search or args.workload or folded:
        from einloom.commands.rtl import config_for
        cfg, _schedule, dims, _roles = config_for(args)
        if dims["choice"] is not None:
            search_info = dims["choice"].to_dict()
            for line in dims["choice"].lines():
                print(line, file=sys.stderr if args.json else sys.stdout)
    else:
        cfg = RtlConfig.from_yaml(args.arch)
    if folded and args.shape:
        raise EinloomError("--shape applies to one-head cascades; a folded GQA/MQA cascade runs its fold cases",
                           location=Location(field="--shape"), hint="drop --shape")
    if folded:
        from einloom.rtl.tb.suite import fold_cases
        sz = _schedule.sizes
        heads = groups = 1
        for r in roles.heads:
            heads *= sz.get(r, 1)
        for r in roles.query_groups:
            groups *= sz.get(r, 1)
        cases = fold_cases(cfg, heads, groups, quick=args.quick)
    elif args.shape:
        cases = [parse_shape(s, i) for i, s in enumerate(args.shape)]
        for case in cases:
            if case.get("window", 0) > case["M"] or case.get("sinks", 0) > case["M"]:
                raise EinloomError(f"shape {case['name'].split('_', 1)[1]}: window and sinks are at most M = {case['M']}",
                                   location=Location(field="--shape"), hint="a window of M keys is the causal mask: use c")
            if case["P"] > cfg.queries_limit or case["M"] > cfg.keys_limit:
                raise EinloomError(f"shape {case['P']}x{case['M']} exceeds the buffers and the core's loop counters "
                                   f"({cfg.queries_limit} queries, {cfg.keys_limit} keys)",
                                   location=Location(field="--shape"), hint=_limit_hint(cfg))
    elif roles is not None:
        from einloom.rtl.tb.suite import spec_cases
        cases = spec_cases(cfg, causal=roles.causal, window=roles.window, sinks=roles.sinks, quick=args.quick)
    else:
        cases = default_cases(cfg, quick=args.quick)
    from einloom.commands.synth import Spinner
    spinner = Spinner(prefix="einloom verify")
    spinner(f"verilate and simulate {len(cases)} case(s)", "start")
    try:
        result = run_suite(cfg, cases, quiet=not args.verbose)
        spinner(f"verilate and simulate {len(cases)} case(s)", "done")
    finally:
        spinner.close()
    rows, ok = [], True
    for case in cases:
        r = result["tests"][case["name"]]
        verdict = r["passed"] != r.get("expect_fail", False)
        ok &= verdict
        status = ("PASS" if verdict else "FAIL") + (" (expected mismatch)" if r.get("expect_fail") else "")
        fold = f"{r.get('heads', 1)}x{r.get('groups', 1)}"
        rows.append([case["name"], fold, r.get("P"), r.get("M"), cfg.head_dim, cfg.value_dim,
                     _mask(case), case.get("backpressure", 0.0),
                     r.get("cycles"), r.get("expected_cycles"),
                     f"{r['util_2d']:.1%}" if r.get("util_2d") is not None else "-", status])
    if args.json:
        print(json.dumps({"arch": args.arch, "top": result["top"], "passed": bool(ok), "search": search_info,
                          "build_dir": result["build_dir"],
                          "cases": [{**case, **result["tests"][case["name"]]} for case in cases]}, indent=2))
    else:
        print(format_table(["case", "heads x groups", "P", "M", "E", "F", "mask", "backpressure", "cycles", "expected",
                            "2D util", "result"], rows, title=f"{result['top']} ({cfg.fmt.kind}, {cfg.rows}x{cfg.cols})"))
        print(f"\n{'all passed' if ok else 'FAILURES'}: {sum(1 for r in rows if r[-1].startswith('PASS'))}"
              f"/{len(rows)}; build {result['build_dir']}")
        for case in cases:
            r = result["tests"][case["name"]]
            if r["passed"] == r.get("expect_fail", False) and r.get("errors"):
                print(f"  {case['name']}: {'; '.join(r['errors'][:3])}")
    return 0 if ok else 1


def _limit_hint(cfg: Any) -> str:
    """What raises a core's query/key limit: the buffers (rtl.max_*) or, when the loop counters were
    sized from a schedule (--workload), a larger schedule."""
    if cfg.keys_limit < cfg.max_keys or cfg.queries_limit < cfg.max_queries:
        return ("the core's loop counters were sized from the schedule (--workload): pass a larger --seq-len or "
                "--ranks, or drop --workload to size them from the buffers")
    return "use a smaller shape, or raise rtl.max_queries / rtl.max_keys in the arch"

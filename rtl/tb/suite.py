"""The verification suite of one configuration: which shapes to run, and running them.

Used by tests/rtl (pytest) and by ``einloom verify``.  Every case is one cocotb test of
:mod:`einloom.rtl.tb.attention_tb`; all cases of a configuration run in one simulator process on one
Verilator build.
"""
from __future__ import annotations

from typing import Any

from einloom.rtl.config import RtlConfig

#: Testplan: feature -> cases covering it (names as in :func:`default_cases`).
TESTPLAN = {
    "smoke: one block, one ragged tile": ["smoke"],
    "single query and key (P=M=1)": ["p1m1"],
    "M not a multiple of the tile, P not a multiple of C": ["ragged"],
    "causal mask (incl. skipped tiles)": ["causal", "causal_ragged", "m64_causal"],
    "causal P < M, bottom-right aligned (decode; the 8 queries x 24 keys of issue 12)":
        ["causal_decode", "causal_8x24", "causal_ragged", "backpressure_causal"],
    "causal P > M: queries that see no key output 0, blocks that see none are skipped":
        ["causal_p_gt_m"],
    "random output backpressure and input idle cycles": ["backpressure", "backpressure_causal", "sinks_window"],
    "sliding window: tiles skipped at both ends of the band (library sliding-window)": ["window"],
    "attention sinks + window: the sink tiles, a gap, the band (library sinks-window)": ["sinks_window"],
    "wide logits (exp range, running-max rescales)": ["wide_logits"],
    "cycle count equals the manifest formula": ["all cases without backpressure"],
    "reference-model random at M=P=64, E=F=16": ["m64", "m64_causal"],
    "long sequence, 2D utilization (M = 128 >= 16 R on the 8x8 core, P = 64)": ["m128"],
    "scoreboard can fail (corrupted reference)": ["negative_corrupt"],
}


def default_cases(cfg: RtlConfig, *, quick: bool = False) -> list[dict[str, Any]]:
    r, c = cfg.rows, cfg.cols
    mk, mq = cfg.keys_limit, cfg.queries_limit     # the buffers' and the controller counters' reach

    def clamp(p, m):
        return min(p, mq), min(m, mk)

    cases = [
        {"name": "smoke", "P": min(c, mq), "M": min(r + 1, mk)},
        {"name": "p1m1", "P": 1, "M": 1},
        {"name": "ragged", "P": min(2 * c + 1, mq), "M": min(3 * r + 1, mk)},
        {"name": "causal", "P": min(2 * c + 3, mq, mk), "M": min(2 * c + 3, mq, mk), "causal": True},
        {"name": "causal_ragged", "P": min(c + 1, mq), "M": min(3 * r + 3, mk), "causal": True},
        {"name": "backpressure", "P": min(2 * c + 2, mq), "M": min(2 * r + 3, mk), "backpressure": 0.5,
         "input_gaps": 0.3},
        {"name": "backpressure_causal", "P": min(c + 3, mq), "M": min(2 * r + 1, mk), "causal": True,
         "backpressure": 0.3, "input_gaps": 0.5},
        {"name": "wide_logits", "P": min(c + 2, mq), "M": min(4 * r + 2, mk), "sd": 3.0},
        {"name": "negative_corrupt", "P": 3, "M": 3, "corrupt": True},
    ]
    if not quick:
        p, m = clamp(64, 64)
        cases += [{"name": "m64", "P": p, "M": m}, {"name": "m64_causal", "P": p, "M": m, "causal": True}]
        if mk >= 128:       # a long sequence (M >= 16 R on the 8x8 core): the 2D utilization case
            cases += [{"name": "m128", "P": min(64, mq), "M": 128}]
    cases += [   # causal with P != M (bottom-right aligned)
        {"name": "causal_decode", "P": 1, "M": min(2 * r + 3, mk), "causal": True, "seed": 1100},
        {"name": "causal_8x24", "P": min(8, mq), "M": min(24, mk), "causal": True, "seed": 1101},
        # P > M (P - M = 2C - 1 when R = C): the first block sees no key, the next mixes queries that
        # see none with queries that do; a ragged last tile
        {"name": "causal_p_gt_m", "P": min(3 * c + 1, mq), "M": min(r + 2, mk), "causal": True, "seed": 1102},
        # bottom-right causal band of the last `window` keys (sliding-window), plus `sinks` first keys
        {"name": "window", "P": min(2 * c + 3, mq), "M": min(5 * r + 3, mk), "causal": True, "window": r + 2,
         "seed": 1103},
        {"name": "sinks_window", "P": min(c + 5, mq), "M": min(6 * r + 1, mk), "causal": True, "window": r + 1,
         "sinks": 2, "backpressure": 0.3, "input_gaps": 0.2, "seed": 1104},
    ]
    for i, case in enumerate(cases):
        case.setdefault("seed", 1000 + i)
    return cases


def spec_cases(cfg: RtlConfig, *, causal: bool, window: int = 0, sinks: int = 0,
               quick: bool = False) -> list[dict[str, Any]]:
    """The cases of one cascade on the core: its mask (none, bottom-right causal, or the causal band of
    ``window`` keys plus ``sinks`` sink keys, read from the cascade's ``where`` predicate) on ragged,
    decode (P < M), P > M, backpressured and M = P = 64 shapes, plus the negative case."""
    base = default_cases(cfg, quick=quick)
    if not causal:
        return [c for c in base if not c.get("causal")]
    if not window:
        return [c for c in base if c.get("causal") and not c.get("window") or c.get("corrupt")]
    r, c = cfg.rows, cfg.cols
    mk, mq = cfg.keys_limit, cfg.queries_limit     # the buffers' and the controller counters' reach
    band = window + sinks
    mask = {"causal": True, "window": window, "sinks": sinks}
    cases = [
        {"name": "band_ragged", "P": min(c + 3, mq), "M": min(band + 3 * r + 1, mk), **mask},
        {"name": "band_decode", "P": 1, "M": min(band + 2 * r + 3, mk), **mask},
        {"name": "band_short", "P": min(2 * c + 1, mq), "M": min(max(window - 1, 1), mk), **mask},
        {"name": "band_p_gt_m", "P": min(band + c + 2, mq), "M": min(band + 1, mk), **mask},
        {"name": "band_backpressure", "P": min(2 * c + 2, mq), "M": min(band + 2 * r + 1, mk), "backpressure": 0.4,
         "input_gaps": 0.3, **mask},
        {"name": "negative_corrupt", "P": 3, "M": 3, "corrupt": True, **mask},
    ]
    if not quick:
        cases.append({"name": "band_m64", "P": min(64, mq), "M": min(64, mk), **mask})
        if mk >= 128:
            cases.append({"name": "band_m128", "P": min(64, mq), "M": 128, **mask})
    for i, case in enumerate(cases):
        case["window"] = min(case["window"], case["M"])
        case["sinks"] = min(case["sinks"], case["M"])
        case.setdefault("seed", 3000 + i)
    return cases


def fold_cases(cfg: RtlConfig, heads: int, groups: int, *, quick: bool = False) -> list[dict[str, Any]]:
    """Cases of a GQA/MQA cascade folded onto the core (``heads`` K/V heads, ``groups`` query heads
    each): one core run per K/V head of ``groups`` x P queries, plus an MQA shape (one K/V head shared
    by four query heads), random backpressure, and the deliberate negative case."""
    r, c = cfg.rows, cfg.cols
    mk, mq = cfg.keys_limit, cfg.queries_limit     # the buffers' and the controller counters' reach

    def queries(p: int, g: int) -> int:
        return max(1, min(p, mq // g))

    cases = [
        {"name": "fold", "P": queries(c + 1, groups), "M": min(2 * r + 3, mk), "heads": heads, "groups": groups},
        {"name": "fold_backpressure", "P": queries(c + 2, groups), "M": min(3 * r + 1, mk), "heads": heads,
         "groups": groups, "backpressure": 0.4, "input_gaps": 0.3},
        {"name": "mqa_fold", "P": queries(c - 1 if c > 1 else 1, 4), "M": min(2 * r + 1, mk), "heads": 1, "groups": 4},
        {"name": "fold_negative_corrupt", "P": queries(2, groups), "M": 3, "heads": heads, "groups": groups,
         "corrupt": True},
    ]
    if not quick:
        cases.append({"name": "fold_m64", "P": queries(64 // groups, groups), "M": min(64, mk), "heads": heads,
                      "groups": groups})
    for i, case in enumerate(cases):
        case.setdefault("seed", 2000 + i)
    return cases


def run_suite(cfg: RtlConfig, cases: list[dict[str, Any]] | None = None, *, quick: bool = False,
              quiet: bool = False) -> dict[str, Any]:
    """Generate, build (cached) and simulate; returns ``{"top", "build_dir", "tests": {name: result}}``."""
    from einloom.rtl.generate import generate
    from einloom.rtl.tb import runner
    design = generate(cfg)
    build_dir = runner.build(design.verilog, design.top_name, quiet=quiet)
    cases = cases if cases is not None else default_cases(cfg, quick=quick)
    out = runner.run_tests(build_dir, design.top_name, "einloom.rtl.tb.attention_tb",
                           spec={"config": cfg.to_dict(), "cases": cases}, quiet=quiet)
    results = out["tests"]
    for case in cases:   # a test that crashed before recording counts as failed
        results.setdefault(case["name"], {"passed": False, "errors": ["no result (simulation crashed?)"],
                                          "P": case["P"], "M": case["M"]})
        results[case["name"]]["expect_fail"] = bool(case.get("corrupt"))
    return {"top": design.top_name, "build_dir": str(build_dir), "tests": results,
            "manifest": design.manifest}

"""``einloom sim`` on an architecture with an ``rtl:`` section: the generated core's cycles next to the
schedule-level simulation.

The schedule-level simulator (``sim/simulator.py``) executes the schedule's tile operations as events
on the arrays; it models no controller.  The core ``einloom rtl`` generates for the cascade has one,
and its cycle count is what a user of the hardware gets.  :func:`core_prediction` asks the generator's
own decision (:func:`einloom.report.hardware.choose_design`: the fixed-function overlapped core when
the cascade matches it and the architecture is not programmable, else the lane core when the lane
compiler accepts it, else refused with both reasons) at the simulated schedule's rank sizes, and
takes the core's cycles from its cycle model (``sim/rtl_core``: ``run_core`` / ``lane_core_cycles``),
which the RTL testbenches assert equal to the measured cycles of every unstalled run.

This module composes the two at the CLI layer: ``sim/`` does not import ``rtl/`` (the one-way flow).
"""
from __future__ import annotations

from typing import Any

#: Why the two numbers differ, per core (printed and in the JSON).
WHY = {
    "fixed": "the core's controller issues one slot per key tile every {period} cycles (the 2D array runs QK "
             "of tile m1+1 and SLNV of tile m1 back to back while the 1D lanes' units work on tile m1), plus one "
             "pipeline fill and drain (array drain, reciprocal, output beats) per block; the schedule-level "
             "simulator executes the schedule's tile ops (the lanes' units concurrent, each op's pipeline depth "
             "on its hand-offs) but lets the 2D array take the next tile's products in any order within the "
             "interleave window of two tiles, prices the mask's select as ops on the 1D units, and models no "
             "controller slot, fill nor drain",
    "lane": "the lane core runs each key tile's phases in sequence (score product, score write to the lanes, "
            "the lanes' program, value product) and waits for its lanes; the schedule-level simulator overlaps "
            "the arrays as the schedule's interleave group says and models no controller",
}


def core_prediction(cascade: Any, arch: Any, schedule: Any) -> dict[str, Any]:
    """The core the generator builds for ``cascade`` on ``arch`` at ``schedule``'s rank sizes and its
    cycles (x the schedule's instances: the core runs one instance after another)."""
    from einloom.base.errors import EinloomError
    from einloom.report.hardware import _defaults, _used_ranks, choose_design
    given = {r: int(n) for r, n in schedule.sizes.items() if r in _used_ranks(cascade)}
    sizes = _defaults(cascade, given, arch)
    try:
        design, fixed_error, lane_error = choose_design(cascade, arch, sizes)
    except EinloomError as exc:       # neither core could even be asked (a rank the cores do not know...)
        design, fixed_error, lane_error = None, None, exc
    out: dict[str, Any] = {"core": "refused" if design is None else design.kind,
                           "ranks": {r: int(n) for r, n in sorted(given.items())},
                           "fixed_core_reason": None if fixed_error is None else fixed_error.message}
    if design is None:
        out["reason"] = lane_error.message
        return out
    instances = int(schedule.instances)
    out.update({"mapping": "the core's own (rtl-core)" if design.kind == "fixed" else "the lane compiler's",
                "cycles_per_instance": int(design.cycles), "instances": instances,
                "cycles": int(design.cycles) * instances, "util_2d": float(design.util_2d),
                "cycle_model": "einloom.sim.rtl_core." + ("run_core" if design.kind == "fixed" else "lane_core_cycles"),
                "mask": design.mask})
    period = None
    if design.kind == "fixed":
        from einloom.rtl.attention import core_params
        period = core_params(design.verify_with[0]).timeline().period
        out["period"] = period
    out["why_they_differ"] = WHY[design.kind].format(period=period)
    return out


def core_lines(core: dict[str, Any], simulated: float, sim_util_2d: float, mapping_name: str) -> list[str]:
    """What ``einloom sim`` prints about the generated core."""
    if core["core"] == "refused":
        lines = [f"generated core (einloom rtl): refused: {core['reason']}"]
        return lines
    from einloom.report.table import format_table
    ranks = " ".join(f"{r}={n}" for r, n in core["ranks"].items())
    runs = f" ({core['instances']} instances x {core['cycles_per_instance']:,})" if core["instances"] > 1 else ""
    rows = [["generated " + core["core"] + " core (= RTL)", f"{core['cycles']:,}{runs}", f"{core['util_2d']:.4f}",
             core["cycle_model"]],
            ["schedule-level simulator", f"{simulated:,.0f}", f"{sim_util_2d:.4f}", f"mapping {mapping_name}"],
            ["ratio simulator / core", f"{simulated / core['cycles']:.3f}" if core["cycles"] else "-", "", ""]]
    lines = ["", f"the core einloom rtl builds for this spec at {ranks}: the {core['core']} core"
             + (f" (period {core['period']} cycles per key tile)" if core.get("period") else "")
             + (f"; the fixed-function core refused: {core['fixed_core_reason']}" if core.get("fixed_core_reason") else ""),
             format_table(["", "cycles", "2D utilization", "source"], rows),
             f"  why they differ: {core['why_they_differ']}"]
    return lines

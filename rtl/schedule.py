"""Limits of the attention core's overlapped schedule (:mod:`einloom.rtl.attention`).

The slot timeline (:class:`einloom.sim.rtl_core.Timeline`) absorbs every hand-off between the 2D
and 1D arrays into the slot period, so any array shape and unit latencies give a correct schedule.
What the core cannot build is refused (by :class:`einloom.rtl.config.RtlConfig` with the file and
line, and again by the core):

* a number format whose 2D accumulate is pipelined (``units.acc_latency`` > 1): the output-stationary
  accumulation would need interleaved partial sums, which the PE does not have yet;
* a PE multiply pipeline other than the core's own (``MAC_LATENCY`` = 2).
"""
from __future__ import annotations

from einloom.sim.rtl_core import CoreParams, Timeline


def schedule_problem(params: CoreParams) -> tuple[str, str] | None:
    """None if the core can run this shape and these latencies, else ``(field, message)``."""
    try:
        Timeline(params)
    except ValueError as exc:
        return ("rtl.number_format", str(exc))
    return None

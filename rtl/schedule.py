"""Limits of the attention core's fixed schedule (:mod:`einloom.rtl.attention`) on the array shape.

The core's phases have fixed lengths, and two hand-offs between them rely on slack that depends on
the shape and the units' latencies; a configuration without that slack would compute wrong results,
so it is rejected (by :class:`einloom.rtl.config.RtlConfig` with the file and line, and again by the
core).

* RD: the shared reciprocal's shift chain samples every column's RD at column 0's last SLNV cycle;
  column c updates RD ``rescale_latency`` cycles after its (c cycles late) ``rd_update`` strobe, at
  SLNV cycle ``c + rescale_latency``.  All C columns are final in time iff
  ``rescale_latency <= F + R + MAC_LATENCY - 1 - C``.  RD must also be final before FINAL's reads:
  ``rescale_latency <= recip_latency + 1``.
* Reciprocal chain: column c's RD enters the shared reciprocal at FINAL cycle c, and the chain only
  shifts during FINAL, so ``C - 1 <= recip_latency + F + output_latency + 1`` (FINAL's length).
"""
from __future__ import annotations

from einloom.rtl.pe import ProcessingElement

MAC_LATENCY = ProcessingElement.MAC_LATENCY


def schedule_problem(rows: int, cols: int, value_dim: int, *, rescale_latency: int, recip_latency: int,
                     output_latency: int) -> tuple[str, str] | None:
    """None if the schedule works for this shape, else ``(field, message)`` naming the broken limit."""
    r, c, f = rows, cols, value_dim
    slack = f + r + MAC_LATENCY - 1 - c
    if rescale_latency > slack:
        return ("array_2d.cols", f"the schedule needs value_dim + rows + {MAC_LATENCY - 1} - cols >= "
                                 f"rescale_latency {rescale_latency} (the last column's RD must be final "
                                 f"when the reciprocal chain loads it); value_dim {f} + rows {r} + "
                                 f"{MAC_LATENCY - 1} - cols {c} = {slack}")
    if rescale_latency > recip_latency + 1:
        return ("rtl.number_format", f"rescale_latency {rescale_latency} exceeds recip_latency + 1 = "
                                     f"{recip_latency + 1}")
    final = recip_latency + f + output_latency + 1
    if c - 1 > final:
        return ("array_2d.cols", f"the shared reciprocal serves column c at FINAL cycle c, so cols - 1 "
                                 f"must be <= the FINAL phase's {final} cycles (recip_latency "
                                 f"{recip_latency} + value_dim {f} + output_latency {output_latency} + 1); "
                                 f"cols is {c}")
    return None

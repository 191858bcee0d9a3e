"""einloom.rtl.lanes: programmable 1D lanes.

The Einsums a schedule binds to the 1D array are compiled into a per-iteration program
(:mod:`.isa`, :mod:`.compile`), executed bit-exactly by :mod:`.execute` on a number format's
arithmetic, and by the Amaranth lane (:mod:`.lane`) in hardware.
"""
from einloom.rtl.lanes.compile import compile_lanes, lane_mapping  # noqa: F401
from einloom.rtl.lanes.isa import Program  # noqa: F401

__all__ = ["compile_lanes", "lane_mapping", "Program"]

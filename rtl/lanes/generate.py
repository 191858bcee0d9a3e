"""Verilog of a lane: one program fixed at generation, or a programmable lane covering several."""
from __future__ import annotations

from dataclasses import dataclass

from einloom.rtl.lanes.encode import Image, LaneShape, encode
from einloom.rtl.lanes.isa import Program
from einloom.rtl.lanes.units import schedule_latency


@dataclass
class LaneDesign:
    """Verilog text of a lane, its top name, capacities and the images of the programs it runs (the
    first is the one it runs from reset)."""

    verilog: str
    top: str
    shape: LaneShape
    images: list[Image]
    programmable: bool


def generate_lane(programs: list[Program], *, programmable: bool = False, top: str = "lane") -> LaneDesign:
    """A lane for ``programs[0]`` (``programmable=False``: fixed, exactly its units and sizes) or for
    all of ``programs`` (``programmable=True``: capacities and units covering every one, load port)."""
    from einloom.rtl.generate import to_verilog
    from einloom.rtl.lanes.lane import Lane
    if not programs:
        raise ValueError("generate_lane needs at least one program")
    if len(programs) > 1 and not programmable:
        raise ValueError("several programs need programmable=True")
    lat = schedule_latency()
    shape = LaneShape.covering(*[encode(p, lat) for p in programs])
    images = [encode(p, lat, shape) for p in programs]
    lane = Lane(images[0], shape, programmable=programmable)
    return LaneDesign(to_verilog(lane, top), top, shape, images, programmable)

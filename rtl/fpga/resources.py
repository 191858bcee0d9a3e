"""Resource counts from Yosys ``stat -json`` and the check that they fit a part.

What is measured: the primitive cells Yosys maps a design to *before* placement (post-synthesis
cell counts).  Placement packs LUTs and flip-flops into slices, so slice/logic-cell utilization after
P&R can differ; LUT, FF, DSP and BRAM primitive counts are what the tables in the literature quote.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from einloom.einsum.errors import ToolError
from einloom.rtl.fpga.targets import CATEGORIES, Part, Target

#: Human names of the categories for tables and messages, per target.
UNIT_NAMES = {
    "ecp5": {"luts": "LUT4", "ffs": "FF", "dsps": "MULT18X18D", "brams": "DP16KD", "carry": "CCU2C",
             "lutram": "DPR16X4 LUTs"},
    "xilinx": {"luts": "LUT", "ffs": "FF", "dsps": "DSP48E1", "brams": "RAMB36 (RAMB18 = 0.5)",
               "carry": "CARRY4", "lutram": "LUTRAM/SRL LUTs"},
    "ice40": {"luts": "SB_LUT4", "ffs": "SB_DFF*", "dsps": "SB_MAC16", "brams": "SB_RAM40_4K",
              "carry": "SB_CARRY", "lutram": "LUTRAM"},
}


@dataclass
class Resources:
    """Post-synthesis resource counts of one design on one target.

    Members
    -------
    counts : dict[str, float]
        Cells per category (see :data:`einloom.rtl.fpga.targets.CATEGORIES`); ``brams`` on Xilinx is in
        RAMB36 units.  ``lutram`` counts LUTs used as memory or shift registers.
    usage : dict[str, float]
        What the fit check charges against the part, per capacity category (``luts`` includes the LUT
        sites taken by ECP5 carry cells and LUT-RAM).
    cells : dict[str, int]
        Every cell type Yosys reported, with its count (including ones no category counts).
    """

    counts: dict[str, float]
    usage: dict[str, float]
    cells: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"counts": dict(self.counts), "usage": dict(self.usage), "cells": dict(self.cells)}

    @classmethod
    def from_dict(cls, data: dict) -> "Resources":
        return cls(dict(data["counts"]), dict(data["usage"]), dict(data["cells"]))


def cells_from_stat(stat: dict, top: str | None = None) -> dict[str, int]:
    """Cell type -> count from a parsed ``stat -json`` document.

    Uses the ``design`` totals (Yosys sums the hierarchy there when the design has a top); for a
    design that still has several modules and no totals, the ``top`` module's own counts.
    """
    design = stat.get("design")
    if design and "num_cells_by_type" in design:
        by_type = design["num_cells_by_type"]
    else:
        modules = stat.get("modules", {})
        key = f"\\{top}" if top is not None and f"\\{top}" in modules else (next(iter(modules), None))
        if key is None:
            raise ToolError("yosys stat report lists no modules",
                            hint="check that the Verilog defines the top module")
        by_type = modules[key].get("num_cells_by_type", {})
    return {str(name).lstrip("\\"): int(count) for name, count in by_type.items()}


def resources_from_cells(target: Target, cells: dict[str, int]) -> Resources:
    """Classify ``cells`` by ``target``'s table into :class:`Resources`."""
    counts = {category: 0.0 for category in CATEGORIES}
    usage: dict[str, float] = {}
    for cell_type, count in cells.items():
        kind = target.classify(cell_type)
        if kind is None:
            continue
        category, weight = kind
        counts[category] += count * (weight if category in ("brams", "lutram") else 1)
        charged = target.fit_category.get(category, category)
        usage[charged] = usage.get(charged, 0.0) + count * weight
    counts = {k: (int(v) if float(v).is_integer() else v) for k, v in counts.items()}
    return Resources(counts=counts, usage=usage, cells=dict(sorted(cells.items())))


def parse_stat_json(text: str, target: Target, top: str | None = None) -> Resources:
    """:class:`Resources` from the text of a Yosys ``stat -json`` report."""
    try:
        stat = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolError(f"cannot read the yosys stat report ({error})",
                        hint="the yosys run may have been cut short; see its log") from None
    return resources_from_cells(target, cells_from_stat(stat, top))


@dataclass(frozen=True)
class Overflow:
    """One resource a design needs more of than a part has."""

    category: str
    used: float
    available: float

    def describe(self, target: Target) -> str:
        unit = UNIT_NAMES.get(target.name, {}).get(self.category, self.category)
        used = math.ceil(self.used) if not float(self.used).is_integer() else int(self.used)
        return f"{used} {unit} of {int(self.available)}"


def overflows(resources: Resources, part: Part) -> list[Overflow]:
    """The resources of ``part`` that ``resources`` exceed (empty when the design fits)."""
    result = []
    for category, available in part.capacity.items():
        used = resources.usage.get(category, 0.0)
        if used > available:
            result.append(Overflow(category, used, available))
    return result


def utilization(resources: Resources, part: Part) -> dict[str, dict[str, float]]:
    """Per capacity category: used, available and the fraction used."""
    table = {}
    for category, available in part.capacity.items():
        used = resources.usage.get(category, 0.0)
        table[category] = {"used": used, "available": available,
                           "fraction": (used / available) if available else (math.inf if used else 0.0)}
    return table


def smallest_fitting_part(target: Target, resources: Resources) -> Part | None:
    """The first part (smallest first) of ``target`` that ``resources`` fit, or None."""
    for part in target.parts:
        if not overflows(resources, part):
            return part
    return None


def fit_error(target: Target, part: Part, resources: Resources, *, chosen: bool,
              ignore: tuple[str, ...] = ()) -> ToolError:
    """The one-line error for a design that does not fit ``part`` (``chosen``: the user named it;
    ``ignore``: categories left out of the message)."""
    over = [o for o in overflows(resources, part) if o.category not in ignore] or overflows(resources, part)
    needs = ", ".join(o.describe(target) for o in over)
    larger = smallest_fitting_part(target, resources)
    if chosen:
        message = f"design does not fit {target.name} part {part.name} ({part.device}): needs {needs}"
        if larger is not None:
            hint = f"use --part {larger.name}, the smallest {target.name} part it fits"
        else:
            hint = (f"no {target.name} part is large enough; use a smaller configuration, another "
                    f"--target, or --no-fit-check to report synthesis area only")
    else:
        message = (f"design does not fit the largest {target.name} part, {part.name} ({part.device}): "
                   f"needs {needs}")
        hint = ("use a smaller configuration, another --target, or --no-fit-check to report "
                "synthesis area only")
    from einloom.einsum.errors import Location
    return ToolError(message, location=Location(field="--part" if chosen else "--target"), hint=hint)


def check_pnr_report(report: dict, target: Target, part: Part) -> None:
    """Raise ToolError if a nextpnr ``--report`` shows any resource used beyond what is available.

    nextpnr normally stops before writing such a report, so this is a guard for reports that say the
    placement over-filled the device, e.g. when the I/O harness pushes a nearly full design over.
    """
    over = []
    for bel_type, entry in report.get("utilization", {}).items():
        used, available = entry.get("used", 0), entry.get("available", 0)
        if used > available:
            over.append(f"{used} {bel_type} of {available}")
    if over:
        larger = [p.name for p in target.parts[target.parts.index(part) + 1:]]
        hint = f"use --part {larger[0]}" if larger else "use a smaller configuration"
        from einloom.einsum.errors import Location
        raise ToolError(f"design with its I/O harness does not fit {target.name} part {part.name} "
                        f"({part.device}) after placement: needs {', '.join(over)}",
                        location=Location(field="--part"), hint=hint)

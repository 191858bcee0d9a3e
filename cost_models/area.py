"""Area roll-up of an architecture: PEs x (units + register file) for both arrays, plus the buffer.

What is counted: every dedicated functional unit of every PE (composite units such as exp-on-the-MAC
add no area), every PE register file, and the global buffer.  What is not: the on-chip network,
control, FuseMax's 8192-entry 1D-side buffer, and the DRAM interface; these are not in the data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from einloom.cost_models.arch import Architecture


@dataclass(frozen=True)
class AreaItem:
    """One line of the roll-up: ``instances`` copies of a component of ``each_um2``."""

    group: str           # array_2d, array_1d, global_buffer
    component: str       # mac, add, ..., register_file, global_buffer
    instances: int
    each_um2: float

    @property
    def total_um2(self) -> float:
        return self.instances * self.each_um2


@dataclass(frozen=True)
class AreaReport:
    """Area of a whole design, at the architecture's technology node."""

    arch: str
    node_nm: int
    items: tuple[AreaItem, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def total_um2(self) -> float:
        return sum(item.total_um2 for item in self.items)

    @property
    def total_mm2(self) -> float:
        return self.total_um2 / 1e6

    def group_um2(self, group: str) -> float:
        """Total of one group (``array_2d``, ``array_1d``, ``global_buffer``)."""
        return sum(item.total_um2 for item in self.items if item.group == group)

    @property
    def groups(self) -> dict[str, float]:
        """Area per group, in roll-up order."""
        order = dict.fromkeys(item.group for item in self.items)
        return {g: self.group_um2(g) for g in order}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: items, per-group totals and the total (um^2 and mm^2)."""
        return {
            "arch": self.arch,
            "node_nm": self.node_nm,
            "items": [{"group": i.group, "component": i.component, "instances": i.instances,
                       "each_um2": i.each_um2, "total_um2": i.total_um2} for i in self.items],
            "groups_um2": self.groups,
            "total_um2": self.total_um2,
            "total_mm2": self.total_mm2,
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """A terminal table, one line per component, with group subtotals and shares."""
        total = self.total_um2 or 1.0
        header = f"{'component':<30}{'instances':>11}{'each um^2':>14}{'total mm^2':>13}{'share':>8}"
        lines = [f"Area of {self.arch} at {self.node_nm} nm", header, "-" * len(header)]
        for group, group_total in self.groups.items():
            for item in (i for i in self.items if i.group == group):
                lines.append(f"{group + '.' + item.component:<30}{item.instances:>11,}{item.each_um2:>14,.1f}"
                             f"{item.total_um2 / 1e6:>13.3f}{item.total_um2 / total:>8.1%}")
            lines.append(f"{'  ' + group + ' subtotal':<30}{'':>11}{'':>14}{group_total / 1e6:>13.3f}"
                         f"{group_total / total:>8.1%}")
        lines.append("-" * len(header))
        lines.append(f"{'total':<30}{'':>11}{'':>14}{self.total_mm2:>13.3f}{1:>8.1%}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def area_report(arch: "Architecture") -> AreaReport:
    """Roll up the area of ``arch`` (see the module docstring for what is counted)."""
    tech = arch.technology
    items: list[AreaItem] = []
    for pe_array in (arch.array_2d, arch.array_1d):
        for unit in pe_array.dedicated_units:
            items.append(AreaItem(pe_array.name, unit, pe_array.num_pes, arch.unit_area_um2(pe_array.kind, unit)))
        rf = pe_array.register_file
        items.append(AreaItem(pe_array.name, "register_file", pe_array.num_pes,
                              tech.component_area_um2("register_file", entries=rf.entries, bits=rf.bits)))
    gb = arch.global_buffer
    items.append(AreaItem("global_buffer", "global_buffer", 1,
                          tech.component_area_um2("global_buffer", capacity_bytes=gb.capacity_bytes,
                                                  row_bits=gb.row_bits)))
    notes = ("not counted: on-chip network, control, 1D-side buffers, DRAM interface",
             "register-file and buffer sizes other than the published ones use einloom's scaling model "
             "(cost_models/data/tech_45nm.yaml)")
    return AreaReport(arch.name, arch.technology_nm, tuple(items), notes)

"""Technology model: energy per action and area per component, at any supported node.

The numbers start from the 45 nm fp16 tables of the FuseMax artifact (``data/tech_45nm.yaml``; every
value there names its source and says whether it is measured, derived or an einloom model) and are
scaled

* to other sizes: register files by a power law in depth fitted to the two published depths, SRAM
  buffers by a power law in bank capacity fitted to the two published organizations (``sqrt``
  outside them) for energy and linearly in capacity for area (a CACTI-style model);
* to other data formats: by Horowitz (ISSCC 2014) adder/multiplier cost ratios;
* to other nodes: by Stillmaker & Baas (Integration 2017) energy and area factors
  (``data/technology_scaling.yaml``; 5 nm is an einloom extrapolation, documented there).

Components and their actions:

=================  ==================  ============================================  ===============
component          actions             size keywords                                 energy per
=================  ==================  ============================================  ===============
mac, mul, add,     compute             ``data_format``, ``bits``                     one operation
max, exp, div,
recip
register_file      read, write         ``entries``, ``bits``                         one value
global_buffer      read, write         ``capacity_bytes``, ``row_bits``, ``banks``   one row
dram               read, write         (none)                                        one 64-bit access
=================  ==================  ============================================  ===============

``dram`` has no area (it is off chip) and its energy is not scaled with the node.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from einloom.einsum.errors import ArchError

#: Compute-unit components that have technology data.
COMPUTE_UNITS: tuple[str, ...] = ("mac", "mul", "add", "max", "exp", "div", "recip")
#: Storage components.
STORAGE_COMPONENTS: tuple[str, ...] = ("register_file", "global_buffer", "dram")
#: Data formats and, where the format fixes it, their width in bits (``fixed`` takes any width).
DATA_FORMATS: dict[str, int | None] = {"int8": 8, "int16": 16, "fixed": None, "bf16": 16, "fp16": 16,
                                       "fp32": 32}

_ADDER_UNITS = ("add", "max")
_MULT_UNITS = ("mul",)
# mac and the multiplier-based iterative units (exp, div, recip) scale like a multiplier + adder.


@lru_cache(maxsize=None)
def _load(name: str) -> dict[str, Any]:
    text = resources.files("einloom.cost_models").joinpath("data", name).read_text()
    return yaml.safe_load(text)


def tech_data() -> dict[str, Any]:
    """The 45 nm table (``data/tech_45nm.yaml``) as plain data."""
    return _load("tech_45nm.yaml")


def scaling_data() -> dict[str, Any]:
    """The node-scaling table (``data/technology_scaling.yaml``) as plain data."""
    return _load("technology_scaling.yaml")


def supported_nodes() -> tuple[int, ...]:
    """Technology nodes (nm) the model can scale to, largest first."""
    data = scaling_data()
    return tuple(sorted({*map(int, data["nodes"]), *map(int, data["extrapolated"])}, reverse=True))


def _energy_fit(node: int, vdd: float) -> float:
    entry = scaling_data()["nodes"][node]
    return entry["a"] * vdd * vdd + entry["b"] * vdd + entry["c"]


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def node_factors(node_nm: int, vdd: float | None = None) -> tuple[float, float]:
    """``(energy_factor, area_factor)`` of ``node_nm`` relative to 45 nm at its nominal supply.

    Energy: Stillmaker & Baas ``f_node(vdd) / f_45(1.0 V)``; area: their area table.  5 nm is
    extrapolated log-log from 10 and 7 nm (see ``data/technology_scaling.yaml``).
    """
    data = scaling_data()
    nodes = {int(k): v for k, v in data["nodes"].items()}
    extra = {int(k): v for k, v in data["extrapolated"].items()}
    ref = int(data["reference_node_nm"])
    ref_energy = _energy_fit(ref, nodes[ref]["vdd"])
    if node_nm in nodes:
        v = nodes[node_nm]["vdd"] if vdd is None else vdd
        return _energy_fit(node_nm, v) / ref_energy, float(nodes[node_nm]["area_from_45"])
    if node_nm in extra:
        far, near = (int(n) for n in extra[node_nm]["from"])
        v = extra[node_nm]["vdd"] if vdd is None else vdd
        slope_e = math.log(_energy_fit(near, v) / _energy_fit(far, v)) / math.log(near / far)
        slope_a = math.log(nodes[near]["area_from_45"] / nodes[far]["area_from_45"]) / math.log(near / far)
        ratio = node_nm / near
        energy = _energy_fit(near, v) * ratio ** slope_e / ref_energy
        area = nodes[near]["area_from_45"] * ratio ** slope_a
        return energy, float(area)
    raise ArchError(f"no technology data for {node_nm} nm",
                    hint=f"supported nodes (nm): {', '.join(map(str, supported_nodes()))}")


def format_factors(unit: str, data_format: str = "fp16", bits: int = 16) -> tuple[float, float]:
    """``(energy_factor, area_factor)`` of ``unit`` in ``data_format`` relative to fp16.

    Model: Horowitz ISSCC 2014 45 nm adder/multiplier costs (``format_scaling`` in
    ``data/tech_45nm.yaml``).  ``add``/``max`` scale like an adder, ``mul`` like a multiplier, the
    others (``mac``, ``exp``, ``div``, ``recip``) like a multiplier plus an adder.
    """
    table = tech_data()["format_scaling"]

    def cost(fmt: str, b: int) -> tuple[float, float, float, float]:
        if fmt in table["float"]:
            e = table["float"][fmt]
            return e["adder_pj"], e["adder_um2"], e["mult_pj"], e["mult_um2"]
        if fmt in ("int8", "int16", "fixed"):
            e, k = table["integer_8bit"], b / 8
            return e["adder_pj"] * k, e["adder_um2"] * k, e["mult_pj"] * k * k, e["mult_um2"] * k * k
        raise ArchError(f"unknown data format '{fmt}'",
                        hint=f"{_did_you_mean(fmt, list(DATA_FORMATS))}use one of {', '.join(DATA_FORMATS)}")

    add_e, add_a, mul_e, mul_a = cost(data_format, bits)
    ref_add_e, ref_add_a, ref_mul_e, ref_mul_a = cost("fp16", 16)
    if unit in _ADDER_UNITS:
        return add_e / ref_add_e, add_a / ref_add_a
    if unit in _MULT_UNITS:
        return mul_e / ref_mul_e, mul_a / ref_mul_a
    return (add_e + mul_e) / (ref_add_e + ref_mul_e), (add_a + mul_a) / (ref_add_a + ref_mul_a)


@dataclass(frozen=True)
class TechnologyModel:
    """Energy per action and area per component at ``node_nm`` (see the module docstring).

    Parameters
    ----------
    node_nm:
        Technology node; one of :func:`supported_nodes` (45 is the node of the published data).
    vdd:
        Supply voltage at ``node_nm`` for the energy fit; ``None`` takes einloom's nominal value
        for the node (listed in ``data/technology_scaling.yaml``).
    """

    node_nm: int = 45
    vdd: float | None = None

    def __post_init__(self) -> None:
        node_factors(self.node_nm, self.vdd)  # raises ArchError for an unsupported node

    @property
    def energy_scale(self) -> float:
        """Energy factor relative to 45 nm (1.0 at 45 nm)."""
        return node_factors(self.node_nm, self.vdd)[0]

    @property
    def area_scale(self) -> float:
        """Area factor relative to 45 nm (1.0 at 45 nm)."""
        return node_factors(self.node_nm, self.vdd)[1]

    # -- energy ------------------------------------------------------------------------------------
    def action_energy_pj(self, component: str, action: str | None = None, *, data_format: str = "fp16",
                         bits: int = 16, entries: int | None = None, capacity_bytes: int | None = None,
                         row_bits: int | None = None, banks: int = 1) -> float:
        """Energy (pJ) of one ``action`` on ``component``.

        Compute units take ``action`` ``None`` or ``"compute"``; ``register_file`` and
        ``global_buffer`` take ``"read"``/``"write"`` and their size (a buffer's energy depends on its
        bank capacity ``capacity_bytes / banks`` and its ``row_bits``); ``dram`` is per 64-bit access.
        """
        data = tech_data()
        scale = self.energy_scale
        if component in data["compute"]:
            _check_action(component, action, ("compute",))
            energy_factor, _ = format_factors(component, data_format, bits)
            return data["compute"][component]["energy_pj"] * energy_factor * scale
        if component == "register_file":
            act = _check_action(component, action, ("read", "write"))
            return _rf_energy(act, _require(entries, "entries", component), bits) * scale
        if component == "global_buffer":
            act = _check_action(component, action, ("read", "write"))
            cap = _require(capacity_bytes, "capacity_bytes", component)
            return _buffer_row_energy(act, cap / _require(banks, "banks", component), row_bits) * scale
        if component == "dram":
            _check_action(component, action, ("read", "write"))
            return float(data["dram"]["energy_per_access_pj"])
        raise _unknown_component(component)

    # -- area --------------------------------------------------------------------------------------
    def component_area_um2(self, component: str, *, data_format: str = "fp16", bits: int = 16,
                           entries: int | None = None, capacity_bytes: int | None = None,
                           row_bits: int | None = None) -> float:
        """Area (um^2) of one instance of ``component`` with the given size."""
        data = tech_data()
        scale = self.area_scale
        if component in data["compute"]:
            _, area_factor = format_factors(component, data_format, bits)
            return data["compute"][component]["area_um2"] * area_factor * scale
        if component == "register_file":
            n = _require(entries, "entries", component)
            ref = data["register_file"]["reference"][0]
            return ref["area_um2"] * (n * bits) / (ref["entries"] * ref["bits"]) * scale
        if component == "global_buffer":
            ref = data["global_buffer"]["reference"][0]
            cap = _require(capacity_bytes, "capacity_bytes", component)
            return ref["area_um2"] * cap / ref["capacity_bytes"] * scale
        if component == "dram":
            raise ArchError("dram has no on-chip area", hint="area covers on-chip components only")
        raise _unknown_component(component)

    def source(self, component: str) -> str:
        """Where the 45 nm number for ``component`` comes from (and how it is scaled)."""
        data = tech_data()
        if component in data["compute"]:
            text = data["compute"][component]["source"]
        elif component in ("register_file", "global_buffer"):
            text = data[component]["scaling"]["source"]
        elif component == "dram":
            text = data["dram"]["source"]
        else:
            raise _unknown_component(component)
        if self.node_nm != 45:
            text += f"; scaled to {self.node_nm} nm: {scaling_data()['source']}"
        return text


def _buffer_row_energy(action: str, bank_bytes: float, row_bits: int | None) -> float:
    """One row access of a buffer bank of ``bank_bytes`` (the ``global_buffer.scaling`` model)."""
    refs = sorted(tech_data()["global_buffer"]["reference"], key=lambda r: r["capacity_bytes"] / r["banks"])
    small, large = refs[0], refs[-1]
    b_small = small["capacity_bytes"] / small["banks"]
    b_large = large["capacity_bytes"] / large["banks"]
    if bank_bytes <= b_small:
        ref, alpha = small, 0.5
    elif bank_bytes >= b_large:
        ref, alpha = large, 0.5
    else:
        ref = small
        alpha = math.log(large[f"{action}_pj"] / small[f"{action}_pj"]) / math.log(b_large / b_small)
    b_ref = ref["capacity_bytes"] / ref["banks"]
    width = row_bits if row_bits is not None else ref["row_bits"]
    return ref[f"{action}_pj"] * (bank_bytes / b_ref) ** alpha * width / ref["row_bits"]


def _rf_energy(action: str, entries: int, bits: int) -> float:
    refs = {r["entries"]: r for r in tech_data()["register_file"]["reference"]}
    deep, shallow = refs[12], refs[4]
    alpha = math.log(deep[f"{action}_pj"] / shallow[f"{action}_pj"]) / math.log(12 / 4)
    return deep[f"{action}_pj"] * (entries / 12) ** alpha * bits / 16


def _check_action(component: str, action: str | None, allowed: tuple[str, ...]) -> str:
    if action is None:
        if len(allowed) == 1:
            return allowed[0]
        raise ArchError(f"component '{component}' needs an action", hint=f"one of {', '.join(allowed)}")
    if action not in allowed:
        raise ArchError(f"component '{component}' has no action '{action}'",
                        hint=f"{_did_you_mean(action, allowed)}actions: {', '.join(allowed)}")
    return action


def _require(value: int | None, name: str, component: str) -> int:
    if value is None or value <= 0:
        raise ArchError(f"{component} needs a positive {name}=", hint=f"pass {name}=... to size the {component}")
    return value


def _unknown_component(component: str) -> ArchError:
    known = list(tech_data()["compute"]) + list(STORAGE_COMPONENTS)
    if component in ("log", "sqrt"):
        return ArchError(f"no technology data for a '{component}' unit",
                         hint=f"give energy_pj and area_um2 in the unit spec, e.g. units.{component}: "
                              "{cycles: 4, energy_pj: 40, area_um2: 20000}, or compose it from other units")
    return ArchError(f"unknown component '{component}'",
                     hint=f"{_did_you_mean(component, known)}components: {', '.join(known)}")

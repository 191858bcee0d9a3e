"""Architecture loading, validation and op-cost expansion."""
from __future__ import annotations

import textwrap

import pytest

from einloom.cost_models.arch import ArrayKind, OpCost, arch_from_dict, load_arch, presets
from einloom.einsum.errors import ArchError
from einloom.einsum.yamlio import load_yaml

MAC, ADD, MAX, DIV, EXP = 17.16, 8.34, 0.028, 36.25, 94.65

BASE = textwrap.dedent("""\
    name: tiny
    clock_mhz: 100
    technology_nm: 45
    data: {format: fp16, bits: 16}
    array_2d:
      rows: 2
      cols: 3
      units: {mac: 1, add: 1, max: 1, exp: {as_mac: 6, add: 1}}
      register_file: {entries: 12, bits: 16}
    array_1d:
      width: 3
      units: {mac: 1, add: 1, div: 4}
      register_file: {entries: 4, bits: 16}
    global_buffer: {capacity_bytes: 16777216, row_bits: 4096, banks: 32}
    dram: {bandwidth_GBps: 1.0}
    """)


def from_text(text: str):
    data, linemap = load_yaml("arch.yaml", text=text, error=ArchError)
    return arch_from_dict(data, linemap)


def error_of(text: str) -> str:
    with pytest.raises(ArchError) as info:
        from_text(text)
    return str(info.value)


def test_presets_load():
    assert {"fusemax-cloud", "flat-cloud", "flat-edge", "fpga-small"} <= set(presets())
    for name in presets():
        arch = load_arch(name)
        assert arch.name == name
        assert arch.source


def test_fusemax_cloud_fields():
    arch = load_arch("fusemax-cloud")
    assert (arch.array_2d.rows, arch.array_2d.cols, arch.array_1d.width) == (256, 256, 256)
    assert arch.global_buffer.capacity_bytes == 16 * 2**20
    assert arch.clock_mhz == 940
    assert arch.dram.bandwidth_bytes_per_s == pytest.approx(400 * 2**30)
    assert arch.array_2d.register_file.entries == 12 and arch.array_1d.register_file.entries == 32
    assert arch.array_1d.kind is ArrayKind.ONE_D


def test_exp_as_six_macs_and_an_add():
    arch = from_text(BASE)
    cost = arch.op_cost("2d", "exp")
    assert cost.cycles == 7
    assert cost.energy_pj == pytest.approx(6 * MAC + ADD)
    assert dict(cost.unit_actions) == {"mac": 6, "add": 1}
    assert arch.op_cost(ArrayKind.TWO_D, "exp") == arch.op_cost("array_2d", "exp")


def test_dedicated_exp_unit_costs_its_table_energy():
    cost = load_arch("flat-cloud").op_cost("1d", "exp")
    assert cost == OpCost(1, pytest.approx(EXP), {"exp": 1})


def test_fallbacks_and_aliases():
    arch = from_text(BASE)
    assert arch.op_cost("2d", "mul").unit_actions == {"mac": 1}
    assert arch.op_cost("2d", "sub").energy_pj == pytest.approx(ADD)
    assert arch.op_cost("2d", "cmp").unit_actions == {"max": 1}
    assert arch.op_cost("2d", "select").energy_pj == pytest.approx(MAX)
    recip = arch.op_cost("1d", "recip")
    assert (recip.cycles, recip.energy_pj, dict(recip.unit_actions)) == (4, pytest.approx(DIV), {"div": 1})


def test_missing_unit_is_an_error_not_free():
    arch = from_text(BASE)
    with pytest.raises(ArchError) as info:
        arch.op_cost("1d", "exp")
    assert str(info.value) == ("arch.yaml:12: array_1d.units: array_1d has no unit for op 'exp' "
                               "(hint: add units.exp (cycles) or units.exp: {as_mac: 6, add: 1})")
    assert not arch.can_execute("1d", "max")
    with pytest.raises(ArchError, match="array_2d has no unit for op 'div'"):
        arch.op_cost("2d", "div")


def test_unknown_op_class():
    with pytest.raises(ArchError, match=r"unknown op class 'exq'.*did you mean 'exp'"):
        from_text(BASE).op_cost("2d", "exq")

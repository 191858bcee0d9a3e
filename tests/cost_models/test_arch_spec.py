"""Architecture loading, validation and op-cost expansion."""
from __future__ import annotations

from pathlib import Path

import pytest

from cost_models_helpers import ADD, BASE, DIV, EXP, MAC, MAX, error_of, from_text
from einloom.cost_models.arch import ArrayKind, OpCost, load_arch, presets
from einloom.einsum.errors import ArchError

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


@pytest.mark.parametrize("old, new, message", [
    ("rows: 2", "rows: -2",
     "arch.yaml:6: array_2d.rows: expected a positive integer, got -2 (hint: sizes are whole numbers >= 1)"),
    ("cols: 3", "colz: 3",
     "arch.yaml:7: array_2d.colz: unknown key 'colz' "
     "(hint: did you mean 'cols'? allowed keys: rows, cols, units, register_file)"),
    ("dram: {bandwidth_GBps: 1.0}\n", "",
     "arch.yaml:1: missing required field 'dram' (hint: add 'dram:' under the top level)"),
    ("width: 3", "",
     "arch.yaml:10: array_1d: missing required field 'width' (hint: add 'width:' under array_1d)"),
    ("div: 4", "dvi: 4",
     "arch.yaml:12: array_1d.units.dvi: unknown op class 'dvi' (hint: did you mean 'div'? "
     "op classes: mac, mul, add, max, exp, div, recip, cmp, log, sqrt, select)"),
    ("format: fp16", "format: fp61",
     "arch.yaml:4: data.format: unknown data format 'fp61' "
     "(hint: did you mean 'fp16'? use one of int8, int16, fixed, bf16, fp16, fp32)"),
    ("bits: 16}\narray_2d", "bits: 8}\narray_2d",
     "arch.yaml:4: data.bits: format fp16 is 16 bits, not 8 (hint: write bits: 16, or format: fixed for other widths)"),
    ("technology_nm: 45", "technology_nm: 3",
     "arch.yaml:3: technology_nm: no technology data for 3 nm "
     "(hint: supported nodes (nm): 180, 130, 90, 65, 45, 32, 20, 16, 14, 10, 7, 5)"),
    ("capacity_bytes: 16777216", "capacity_bytes: 16MB",
     "arch.yaml:14: global_buffer.capacity_bytes: expected a positive integer, got '16MB' "
     "(hint: write a whole number such as 256)"),
    ("clock_mhz: 100", "clock_mhz: 0", "arch.yaml:2: clock_mhz: must be positive, got 0 (hint: write a number > 0)"),
    ("clock_mhz: 100", "clock: 100",
     "arch.yaml:2: clock: unknown key 'clock' (hint: did you mean 'clock_mhz'? allowed keys: name, clock_mhz, "
     "data, array_2d, array_1d, global_buffer, dram, technology_nm, description, source, rtl)"),
])
def test_validation_errors_name_file_line_and_field(old, new, message):
    assert old in BASE
    assert error_of(BASE.replace(old, new, 1)) == message


def test_composite_unit_errors():
    text = BASE.replace("units: {mac: 1, add: 1, div: 4}", "units: {add: 1, div: 4, exp: {as_mac: 6, add: 1}}")
    assert error_of(text) == ("arch.yaml:12: array_1d.units.exp: array_1d has no unit for op 'mac' "
                              "(hint: add units.mac: 1 (cycles per op))")
    assert error_of(BASE.replace("{as_mac: 6, add: 1}", "{as_mak: 6, add: 1}")).startswith(
        "arch.yaml:8: array_2d.units.exp.as_mak: unknown op class 'as_mak' in composite unit")
    assert "unit 'sqrt' is composed of itself (sqrt -> sqrt)" in error_of(
        BASE.replace("div: 4}", "div: 4, sqrt: {as_sqrt: 2}}"))


def test_unit_without_technology_data_needs_user_costs():
    message = error_of(BASE.replace("div: 4}", "div: 4, log: 2}"))
    assert message.startswith("arch.yaml:12: array_1d.units.log: no technology data for a 'log' unit")
    arch = from_text(BASE.replace("div: 4}", "div: 4, log: {cycles: 3, energy_pj: 5.5, area_um2: 700}}"))
    assert arch.op_cost("1d", "log") == OpCost(3, 5.5, {"log": 1})
    assert arch.unit_area_um2("1d", "log") == 700


def test_unknown_preset_lists_presets():
    with pytest.raises(ArchError) as info:
        load_arch("fusemax-clod")
    assert str(info.value) == ("unknown architecture preset 'fusemax-clod' (hint: did you mean 'fusemax-cloud'? "
                               "presets: flat-cloud, flat-edge, fpga-small, fusemax-cloud; "
                               "or give a path to a .yaml file)")


def test_missing_file_and_rtl_section(tmp_path):
    with pytest.raises(ArchError, match="file not found"):
        load_arch(tmp_path / "nope.yaml")
    rtl = load_arch("fpga-small").rtl
    assert rtl["number_format"] == {"kind": "fixed", "input_bits": 8, "frac_bits": 4, "acc_bits": 32}
    assert (rtl["head_dim"], rtl["value_dim"]) == (16, 16)
    assert load_arch("fusemax-cloud").rtl is None
    rtl_only = tmp_path / "rtl-only.yaml"
    rtl_only.write_text("name: x\nclock_mhz: 100\narray_2d: {rows: 4, cols: 4}\narray_1d: {width: 4}\n"
                        "rtl: {head_dim: 16, value_dim: 16, max_keys: 64, max_queries: 64}\n")
    with pytest.raises(ArchError, match="missing required fields data, global_buffer, dram: one architecture "
                                        "file serves") as err:
        load_arch(rtl_only)
    assert "examples/archs/rtl-4x4-int8.yaml" in err.value.hint


def test_rtl_archs_are_complete_architectures():
    """The shipped RTL cores load as architectures, with the latencies of the units the core builds."""
    archs = Path(__file__).resolve().parents[2] / "examples" / "archs"
    # bf16: the 2D MAC's product 3 + its pipelined fp32 add 4 - 1 (acc_latency 4)
    for name, exp, mac in (("rtl-4x4-int8", 4, 3), ("rtl-8x8-int8", 4, 3), ("rtl-4x4-bf16", 18, 6)):
        arch = load_arch(archs / f"{name}.yaml")
        assert arch.rtl is not None and arch.array_1d.width == arch.array_2d.cols
        assert arch.unit_latency("2d", "mac") == mac and arch.unit_latency("1d", "exp") == exp
        assert arch.op_cost("1d", "div").unit_actions == {"recip": 1, "mul": 1}
        assert arch.unit_latency("2d", "exp") is None


def test_energy_table_and_derived_quantities():
    arch = load_arch("fusemax-cloud")
    table = arch.energy_per_action()
    assert table["dram.read"] == 249.6
    assert table["global_buffer.read"] == pytest.approx(484.97)
    assert table["global_buffer.write"] == pytest.approx(451.30)
    assert table["array_2d.register_file.read"] == pytest.approx(0.653)
    assert table["array_2d.register_file.write"] == pytest.approx(0.570)
    assert table["array_2d.mac"] == pytest.approx(MAC)
    assert "array_2d.exp" not in table          # composite: no unit of its own
    assert arch.dram_bytes_per_cycle == pytest.approx(400 * 2**30 / 940e6)
    flat = load_arch("flat-cloud").energy_per_action()
    assert flat["array_2d.register_file.read"] == pytest.approx(0.292)
    assert flat["array_2d.register_file.write"] == pytest.approx(0.225)
    assert flat["array_1d.exp"] == pytest.approx(EXP)


def test_technology_node_defaults_to_45nm():
    arch = from_text(BASE.replace("technology_nm: 45\n", ""))
    assert arch.technology_nm == 45

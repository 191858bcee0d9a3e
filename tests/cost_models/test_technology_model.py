"""Technology data, size/format/node scaling, and the area roll-up."""
from __future__ import annotations

import math

import pytest

from cost_models_helpers import BASE, from_text
from einloom.cost_models.arch import load_arch
from einloom.cost_models.technology import TechnologyModel, format_factors, node_factors, supported_nodes
from einloom.einsum.errors import ArchError


def test_45nm_table_values():
    t = TechnologyModel(45)
    assert t.action_energy_pj("mac") == 17.16
    assert t.action_energy_pj("add", "compute") == 8.34
    assert t.action_energy_pj("max") == 0.028
    assert t.action_energy_pj("exp") == 94.65
    assert t.action_energy_pj("div") == 36.25
    assert t.action_energy_pj("dram", "read") == 249.6
    assert t.action_energy_pj("global_buffer", "read", capacity_bytes=16 * 2**20, banks=32) == pytest.approx(484.97)
    assert t.action_energy_pj("global_buffer", "write", capacity_bytes=16 * 2**20, banks=32) == pytest.approx(451.30)
    # FLAT's 32 MB / 4-bank buffer: derived from the artifact's FLAT energy (see the data file)
    assert t.action_energy_pj("global_buffer", "read", capacity_bytes=32 * 2**20, banks=4) == pytest.approx(22698)
    assert t.action_energy_pj("global_buffer", "write", capacity_bytes=32 * 2**20, banks=4) == pytest.approx(21122)
    assert t.action_energy_pj("register_file", "read", entries=12) == pytest.approx(0.653)
    assert t.action_energy_pj("register_file", "write", entries=4) == pytest.approx(0.225)
    assert t.component_area_um2("global_buffer", capacity_bytes=16 * 2**20) == pytest.approx(9.42e7)
    assert [t.component_area_um2(c) for c in ("mac", "add", "max", "div")] == [1545, 1030, 49.3, 23741]
    assert t.component_area_um2("register_file", entries=12) == pytest.approx(4256)
    assert "FuseMax artifact" in t.source("mac")


def test_size_scaling_models():
    t = TechnologyModel(45)
    # SRAM energy per row depends on the bank capacity: sqrt below 512 KB banks and above 8 MB banks,
    # the power law through the two artifact organizations in between; linear in the row width
    def row(cap, banks, **kw):
        return t.action_energy_pj("global_buffer", "read", capacity_bytes=cap, banks=banks, **kw)
    assert row(4 * 2**20, 32) == pytest.approx(484.97 / 2)                 # 128 KB banks: sqrt(1/4)
    assert row(128 * 2**20, 4) == pytest.approx(22698 * 2)                 # 32 MB banks: sqrt(4)
    alpha = math.log(22698 / 484.97) / math.log(16)
    assert row(64 * 2**20, 32) == pytest.approx(484.97 * 4 ** alpha)       # 2 MB banks: fitted law
    assert row(16 * 2**20, 32, row_bits=2048) == pytest.approx(484.97 / 2)
    sizes = [row(2**k, 1) for k in range(12, 28)]
    assert sizes == sorted(sizes)                                           # monotone and continuous
    assert row(512 * 2**10 * (1 + 1e-9), 1) == pytest.approx(row(512 * 2**10, 1))
    assert row(8 * 2**20 * (1 - 1e-9), 1) == pytest.approx(row(8 * 2**20, 1))
    assert t.component_area_um2("global_buffer", capacity_bytes=32 * 2**20) == pytest.approx(2 * 9.42e7)
    # register file: power law through the two published depths, monotone in depth; area linear in bits
    reads = [t.action_energy_pj("register_file", "read", entries=n) for n in (2, 4, 8, 12, 16, 32)]
    assert reads == sorted(reads) and reads[1] == pytest.approx(0.292)
    assert t.action_energy_pj("register_file", "read", entries=12, bits=32) == pytest.approx(2 * 0.653)
    assert t.component_area_um2("register_file", entries=4) == pytest.approx(4256 / 3)


def test_node_scaling_exact_at_16nm():
    f45 = 1.018 * 1.0**2 - 0.3107 * 1.0 + 0.1539          # HP45 fit at 1.0 V
    f16 = 0.2958 * 0.8**2 - 0.1241 * 0.8 + 0.03024        # HP16 fit at 0.8 V
    t = TechnologyModel(16)
    assert t.energy_scale == pytest.approx(f16 / f45)
    assert t.area_scale == pytest.approx(0.19)
    assert t.action_energy_pj("mac") == pytest.approx(17.16 * f16 / f45)
    assert t.component_area_um2("mac") == pytest.approx(1545 * 0.19)
    assert t.action_energy_pj("dram", "read") == 249.6       # off chip: not node-scaled
    assert TechnologyModel(16, vdd=1.0).energy_scale == pytest.approx((0.2958 - 0.1241 + 0.03024) / f45)


def test_node_scaling_monotone_and_5nm_extrapolation():
    nodes = supported_nodes()
    assert nodes[-1] == 5 and 45 in nodes and 7 in nodes
    energy = [node_factors(n)[0] for n in nodes]
    area = [node_factors(n)[1] for n in nodes]
    assert energy == sorted(energy, reverse=True) and area == sorted(area, reverse=True)
    assert node_factors(45) == (1.0, 1.0)
    e7, a7 = node_factors(7)
    e10 = (0.2068 * 0.49 - 0.09311 * 0.7 + 0.02375)
    e7_fit = (0.1776 * 0.49 - 0.09097 * 0.7 + 0.02447)
    e5, a5 = node_factors(5)
    assert a5 == pytest.approx(0.059 * (5 / 7) ** (math.log(0.059 / 0.10) / math.log(7 / 10)))
    assert e5 / e7 == pytest.approx((5 / 7) ** (math.log(e7_fit / e10) / math.log(7 / 10)))
    with pytest.raises(ArchError, match="no technology data for 3 nm"):
        TechnologyModel(3)


def test_format_scaling():
    assert format_factors("mac", "fp16", 16) == (1.0, 1.0)
    assert format_factors("mac", "bf16", 16) == (1.0, 1.0)
    e32, a32 = format_factors("mac", "fp32", 32)
    assert e32 == pytest.approx((3.7 + 0.9) / (1.1 + 0.4)) and a32 == pytest.approx((7700 + 4184) / (1640 + 1360))
    assert format_factors("add", "int8", 8)[0] == pytest.approx(0.03 / 0.4)
    assert format_factors("mul", "int16", 16)[0] == pytest.approx(0.2 * 4 / 1.1)
    assert format_factors("mac", "fixed", 16) == format_factors("mac", "int16", 16)
    arch = load_arch("fpga-small")
    assert arch.op_cost("2d", "mac").energy_pj == pytest.approx(17.16 * (0.8 + 0.06) / 1.5)


def test_component_errors():
    t = TechnologyModel(45)
    with pytest.raises(ArchError, match=r"unknown component 'macc'.*did you mean 'mac'"):
        t.action_energy_pj("macc")
    with pytest.raises(ArchError, match="component 'global_buffer' has no action 'reed'"):
        t.action_energy_pj("global_buffer", "reed", capacity_bytes=1024)
    with pytest.raises(ArchError, match="register_file needs a positive entries="):
        t.action_energy_pj("register_file", "read")
    with pytest.raises(ArchError, match="dram has no on-chip area"):
        t.component_area_um2("dram")


def test_area_rollup_hand_checked_on_tiny_array():
    # 2D: 2x3 PEs of mac + add + max (exp is composite: no area) + RF(12x16);
    # 1D: 3 PEs of mac + add + div + RF(4x16); buffer 16 MB.
    report = from_text(BASE).area_report()
    pe_2d = 1545 + 1030 + 49.3 + 4256
    pe_1d = 1545 + 1030 + 23741 + 4256 / 3
    assert report.group_um2("array_2d") == pytest.approx(6 * pe_2d)
    assert report.group_um2("array_1d") == pytest.approx(3 * pe_1d)
    assert report.group_um2("global_buffer") == pytest.approx(9.42e7)
    assert report.total_um2 == pytest.approx(6 * pe_2d + 3 * pe_1d + 9.42e7)
    assert {(i.group, i.component) for i in report.items} == {
        ("array_2d", "mac"), ("array_2d", "add"), ("array_2d", "max"), ("array_2d", "register_file"),
        ("array_1d", "mac"), ("array_1d", "add"), ("array_1d", "div"), ("array_1d", "register_file"),
        ("global_buffer", "global_buffer")}
    data = report.to_dict()
    assert data["total_mm2"] == pytest.approx(report.total_um2 / 1e6)
    assert data["groups_um2"]["array_2d"] == pytest.approx(6 * pe_2d)
    text = report.table()
    assert "array_2d.register_file" in text and "total" in text


def test_area_scales_with_node():
    at45 = from_text(BASE).area_report().total_um2
    at16 = from_text(BASE.replace("technology_nm: 45", "technology_nm: 16")).area_report().total_um2
    assert at16 == pytest.approx(0.19 * at45)


def test_fusemax_vs_flat_area():
    # FuseMax (paper, per a third-party review) claims 6.4% less area than FLAT.  With the published
    # 45 nm component areas and einloom's linear register-file/SRAM area model the roll-up does NOT
    # reproduce that: the depth-12 register file in every 2D PE outweighs FLAT's extra 16 MB.
    fusemax = load_arch("fusemax-cloud").area_report()
    flat = load_arch("flat-cloud").area_report()
    assert fusemax.total_mm2 == pytest.approx(554.76, rel=1e-3)
    assert flat.total_mm2 == pytest.approx(460.44, rel=1e-3)
    assert fusemax.group_um2("global_buffer") == pytest.approx(flat.group_um2("global_buffer") / 2)


def test_every_data_entry_names_its_source():
    from einloom.cost_models.technology import scaling_data, tech_data
    data = tech_data()
    for name, entry in data["compute"].items():
        assert entry["source"] and entry["kind"] in ("measured", "derived", "model"), name
    for ref in data["register_file"]["reference"] + data["global_buffer"]["reference"]:
        assert ref["source"] and ref["kind"] in ("measured", "derived")
        assert ref["kind"] == "measured" or len(ref["note"]) > 200      # a derived value shows its derivation
    for section in ("register_file", "global_buffer"):
        assert data[section]["scaling"]["kind"] == "model" and data[section]["scaling"]["source"]
    assert data["dram"]["source"] and data["format_scaling"]["kind"] == "model"
    assert "Stillmaker" in scaling_data()["source"] and "extrapolated" in scaling_data()["source"]

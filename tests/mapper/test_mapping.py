"""Mapping files: loading, validation messages with file/line/field, round trip, loop nest."""
from __future__ import annotations

import textwrap

import pytest

from einloom.einsum.errors import MappingError
from einloom.mapper.evaluate import evaluate
from einloom.mapper.mapping import load_mapping, mapping_from_dict

from mapper_helpers import qk_view, small_arch

GOOD = textwrap.dedent("""\
    name: hand
    binding:
      2d: [QK]
      1d: [LM]
    spatial:
      2d: {rows: [M], cols: [P]}
      1d: {lanes: [P]}
    tiling:
      M: {DRAM: 2, spatial: 4}
      P: {DRAM: 2, spatial: 4}
      E: {PE: 4}
    loop_order:
      DRAM: [P, M]
    groups:
      - {einsums: all, pipeline: interleave, interleave_rank: M}
    """)


def write(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def test_load_and_evaluate(tmp_path):
    m = load_mapping(write(tmp_path, GOOD))
    assert m.binding == {"QK": "2d", "LM": "1d"}
    ev = evaluate(qk_view(with_max=True), m, small_arch())
    assert ev.per_einsum_cycles == {"QK": 16, "LM": 16}
    nest = ev.loop_nest
    assert "for p_dram in [0:2)" in nest and "for m_dram in [0:2)" in nest
    assert nest.index("p_dram") < nest.index("m_dram")
    assert "parallel-for 2d [rows: M (4/4); cols: P (4/4)]  runs QK" in nest
    assert "interleave over M" in nest


def test_round_trip(tmp_path):
    m = load_mapping(write(tmp_path, GOOD))
    again = mapping_from_dict(m.to_dict())
    assert again.to_dict() == m.to_dict()
    import yaml
    assert mapping_from_dict(yaml.safe_load(m.to_yaml())).to_dict() == m.to_dict()
    streamed = load_mapping(write(tmp_path, GOOD + "bypass: [Q, LM]\n"))
    assert streamed.bypass == ("Q", "LM")
    assert mapping_from_dict(yaml.safe_load(streamed.to_yaml())).bypass == ("Q", "LM")
    assert "bypass the buffer: Q, LM" in evaluate(qk_view(with_max=True), streamed, small_arch()).loop_nest


@pytest.mark.parametrize("old,new,message,line", [
    ("  1d: [LM]\n", "  3d: [LM]\n", "unknown array '3d'", 4),
    ("  1d: [LM]\n", "  1d: [QK]\n", "Einsum 'QK' is bound twice", 4),
    ("  E: {PE: 4}\n", "  E: {REG: 4}\n", "unknown level 'REG'", 11),
    ("  E: {PE: 4}\n", "  E: {PE: 0}\n", "tiling.E.PE: expected a positive whole factor, got 0", 11),
    ("  2d: {rows: [M], cols: [P]}\n", "  2d: {rows: [M], depth: [P]}\n", "dimension of the 2d array: 'depth'", 6),
    ("pipeline: interleave", "pipeline: overlap", "unknown pipeline 'overlap'", 15),
    ("loop_order:\n", "loop_orders:\n", "unknown field 'loop_orders'", 12),
])
def test_errors_name_file_line_field(tmp_path, old, new, message, line):
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    text = str(info.value)
    assert message in text
    assert f"{path}:{line}" in text


def test_unknown_einsum_in_file_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  1d: [LM]\n", "  1d: [LMX]\n"))
    m = load_mapping(path)
    with pytest.raises(MappingError) as info:
        evaluate(qk_view(with_max=True), m, small_arch())
    assert "unknown Einsum 'LMX'" in str(info.value) and f"{path}:4" in str(info.value)
    assert "did you mean 'LM'" in str(info.value)


def test_syntax_error(tmp_path):
    with pytest.raises(MappingError, match="YAML syntax error"):
        load_mapping(write(tmp_path, "name: [unclosed\n"))

"""Architecture YAML -> RtlConfig validation, Verilog generation, manifest, lint, CLI."""
import json
from pathlib import Path

import pytest

from einloom.cli import main
from einloom.einsum.errors import ArchError
from einloom.rtl import RtlConfig, generate
from einloom.rtl.tb.runner import lint

ARCHS = Path(__file__).resolve().parents[2] / "examples" / "archs"
GOOD = (ARCHS / "rtl-4x4-int8.yaml").read_text()


def write(tmp_path, text):
    path = tmp_path / "arch.yaml"
    path.write_text(text)
    return path


def test_example_configs_load():
    cfg = RtlConfig.from_yaml(ARCHS / "rtl-8x8-int8.yaml")
    assert (cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim, cfg.tile_m) == (8, 8, 16, 16, 8)
    assert cfg.fmt.kind == "fixed" and cfg.fmt.input_bits == 8


@pytest.mark.parametrize("old,new,field,line", [
    ("width: 4", "width: 8", "array_1d.width", 5),
    ("rows: 4, cols: 4", "rows: 0, cols: 4", "array_2d.rows", 4),
    ("head_dim: 16", "head_dim: sixteen", "rtl.head_dim", 8),
    ("acc_bits: 32", "acc_bits: 16", "rtl.number_format.acc_bits", 7),
    ("acc_bits: 32", "acc_bits: 32, bogus: 1", "rtl.number_format.bogus", 7),
    ("kind: fixed", "kind: posit", "rtl.number_format.kind", 7),
    ("scale: true", "scale: true\n  tile_m: 2", "rtl.tile_m", 13),
    ("scale: true", "scale: true\n  colour: red", "rtl.colour", 13),
])
def test_errors_name_file_line_field(tmp_path, old, new, field, line):
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ArchError) as info:
        RtlConfig.from_yaml(path)
    loc = info.value.location
    assert loc.field == field and loc.line == line and loc.file == str(path), str(info.value)


def test_missing_rtl_section(tmp_path):
    path = write(tmp_path, "name: x\narray_2d: {rows: 2, cols: 2}\n")
    with pytest.raises(ArchError, match="missing required field 'rtl'"):
        RtlConfig.from_yaml(path)


@pytest.fixture(scope="module")
def design_4x4():
    return generate(RtlConfig.from_yaml(ARCHS / "rtl-4x4-int8.yaml"))


def test_generate_api(design_4x4):
    d = design_4x4
    assert d.top_name == "einloom_rtl_4x4_int8"
    assert f"module {d.top_name}(" in d.verilog
    names = {p["name"]: p for p in d.manifest["ports"]}
    assert names["q__payload"]["width"] == 16 * 8 and names["out__payload"]["width"] == 16 * 16
    assert names["out__ready"]["direction"] == "input" and names["out__valid"]["direction"] == "output"
    ex = d.manifest["latency"]["examples"][0]
    # by hand: tile = 2 + (E+R+1) + R + 1 + (R+1+exp 4) + (F+R+2) = 59 cycles, final = recip 5 + F +
    # output 3 + 1 = 25; 16 blocks of [1 + 16 tiles * 59 + 25 + 4 beats] + 1 = 15,585
    assert (ex["P"], ex["M"], ex["compute_cycles"]) == (64, 64, 15585)



def test_manifest_examples_within_buffers(tmp_path):
    # a small buffer: the example shapes are clamped to it and none is listed twice
    text = GOOD.replace("rows: 4, cols: 4", "rows: 2, cols: 2").replace("width: 4", "width: 2")
    text = text.replace("max_keys: 256", "max_keys: 32").replace("max_queries: 64", "max_queries: 16")
    text = text.replace("head_dim: 16", "head_dim: 4").replace("value_dim: 16", "value_dim: 4")
    examples = generate(RtlConfig.from_yaml(write(tmp_path, text))).manifest["latency"]["examples"]
    shapes = [(ex["P"], ex["M"], ex["causal"]) for ex in examples]
    assert shapes == [(16, 32, False), (16, 32, True)]

@pytest.mark.slow
def test_lint_clean(tmp_path, design_4x4):
    vpath, _ = design_4x4.write(tmp_path)
    clean, output = lint(vpath, design_4x4.top_name)
    assert clean, output


def test_lint_detects_problems(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output [1:0] y);\n  wire never_driven;\n  assign y = {a, never_driven};\nendmodule\n")
    clean, _ = lint(bad, "bad")
    assert not clean


@pytest.mark.slow
def test_larger_array_generates_and_lints(tmp_path):
    text = GOOD.replace("rows: 4, cols: 4", "rows: 16, cols: 16").replace("width: 4", "width: 16")
    d = generate(RtlConfig.from_yaml(write(tmp_path, text)))
    vpath, _ = d.write(tmp_path / "out")
    clean, output = lint(vpath, d.top_name)
    assert clean, output[-2000:]


@pytest.mark.slow
def test_cli_rtl(tmp_path, capsys):
    assert main(["rtl", "--arch", str(ARCHS / "rtl-4x4-int8.yaml"), "-o", str(tmp_path), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (tmp_path / f"{manifest['top']}.v").exists() and (tmp_path / "manifest.json").exists()


def test_cli_rtl_error_is_one_line(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("width: 4", "width: 3"))
    assert main(["rtl", "--arch", str(path), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "array_1d.width" in err and ":5:" in err


@pytest.mark.parametrize("rows,cols,dim,ok,match", [
    # the last column's RD must be final when the reciprocal chain loads it: F + R + 1 - C >= 2
    (2, 4, 2, False, r"value_dim \+ rows \+ 1 - cols >= rescale_latency 2.*= 1"),
    (2, 4, 3, True, None),
    (1, 4, 1, False, r"= -1"),
    # the reciprocal chain shifts only during FINAL (5 + F + 3 + 1 cycles): C - 1 <= 10 at F = 1
    (12, 12, 1, False, r"cols - 1 must be <= the FINAL phase's 10 cycles.*cols is 12"),
    (11, 11, 1, True, None),
])
def test_schedule_limits_are_config_errors(tmp_path, rows, cols, dim, ok, match):
    # measured by simulation (review of the pipelined core): the rejected shapes computed wrong AV
    text = (GOOD.replace("rows: 4, cols: 4", f"rows: {rows}, cols: {cols}").replace("width: 4", f"width: {cols}")
            .replace("head_dim: 16", f"head_dim: {dim}").replace("value_dim: 16", f"value_dim: {dim}"))
    path = write(tmp_path, text)
    if ok:
        RtlConfig.from_yaml(path)
        return
    with pytest.raises(ArchError, match=match) as info:
        RtlConfig.from_yaml(path)
    assert info.value.location.field == "array_2d.cols" and info.value.location.line == 4


def test_key_index_wide_enough_for_padding_keys():
    from einloom.rtl.vector import key_index_bits
    # max_keys 7 (index_bits 3), R = 5: the last tile's padding keys reach 7 + 5 - 2 = 10 > 7
    assert key_index_bits(3, 5) == 4 and (1 << key_index_bits(3, 5)) > 7 + 5 - 2
    for ib in range(1, 12):
        for rows in range(1, 65):
            assert (1 << key_index_bits(ib, rows)) > (1 << ib) - 1 + rows - 1

"""The sweep file reader: what it accepts, and the one-line errors (file:line: field) for what it does not."""
from __future__ import annotations

import pytest

from einloom.cli import main
from einloom.sweep.errors import SweepError
from einloom.sweep.spec import load_sweep, parse_quantity
from sweep_helpers import SMALL, write_sweep


def test_small_sweep_reads(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    assert [p.name for p in sweep.parameters] == ["array", "buffer"]
    assert sweep.parameters[0].paths == ("array_2d.rows", "array_2d.cols", "array_1d.width")
    assert sweep.parameters[1].values == (2 ** 20, 4 * 2 ** 20)
    assert [(w.model, w.seq_len) for w in sweep.workloads] == [("bert", 1024), ("t5", 2048)]
    assert sweep.configurations[0].mapping.kind == "auto" and sweep.sampling == "grid"
    assert [c.name for c in sweep.configurations] == ["fusemax-1pass"]


def test_shipped_sweeps_read():
    for name in ("array-buffer", "variants-workloads"):
        sweep = load_sweep(f"examples/sweeps/{name}.yaml")
        assert sweep.variants and sweep.workloads


def test_quantities():
    assert parse_quantity("16MiB") == 16 * 2 ** 20
    assert parse_quantity("4 KiB") == 4096
    assert parse_quantity("2MB") == 2_000_000
    assert parse_quantity(128) == 128
    assert parse_quantity("fp16") == "fp16"


@pytest.mark.parametrize("old, new, line, words", [
    ("path: global_buffer.capacity_bytes", "path: global_buffer.capacity_byte", 13,
     ["global_buffer.capacity_byte", "did you mean 'global_buffer.capacity_bytes'"]),
    ("values: [64, 128, 256]", "values: [64, -128, 256]", 11, ["value -128", "array_2d.rows", "positive"]),
    ("mapping: auto", "mapping: fusemx", 7, ["unknown mapping 'fusemx'", "did you mean 'fusemax'"]),
    ("- {model: bert, seq_len: 1K}", "- {model: bert, seq_len: 1Q}", 5, ["sequence length", "1Q"]),
    ("variants: [fusemax-1pass]", "variants: [fusemax-2pass]", 3, ["fusemax-2pass"]),
    ("name: small", "name: small\nsampling: {method: lhs}", 2, ["samples"]),
    ("name: small", "name: small\nconstraint: {area_mm2: 1}", 2, ["unknown key 'constraint'", "constraints"]),
])
def test_errors_name_line_and_field(tmp_path, old, new, line, words):
    path = write_sweep(tmp_path, SMALL.replace(old, new))
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    text = str(info.value)
    assert text.startswith(f"{path}:{line}"), text
    for word in words:
        assert word in text, text


def test_grid_rejects_a_range(tmp_path):
    text = SMALL.replace("values: [1MiB, 4MiB]", "range: [1MiB, 64MiB]")
    with pytest.raises(SweepError, match="grid cannot enumerate"):
        load_sweep(write_sweep(tmp_path, text))


def test_cli_error_is_one_line_exit_2(tmp_path, capsys):
    path = write_sweep(tmp_path, SMALL.replace("array_2d.rows", "array_2d.rowz"))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "array_2d.rowz" in err and "did you mean 'array_2d.rows'" in err


@pytest.mark.parametrize("argv, flag", [
    (["--jobs", "0"], "--jobs"),
    (["--executor", "dask"], "--scheduler"),
    (["--workers", "2"], "--workers"),
    (["--executor", "dask-local", "--jobs", "2"], "--jobs"),
])
def test_bad_flags(tmp_path, capsys, argv, flag):
    assert main(["sweep", str(write_sweep(tmp_path)), *argv]) == 2
    assert flag in capsys.readouterr().err


CONFIGS = """\
name: configs
configurations:
  - {name: FLAT, variant: softmax-3pass, arch: flat-cloud, mapping: flat}
  - {name: FuseMax, variant: fusemax-1pass, arch: fusemax-cloud, mapping: fusemax}
workloads: [{model: bert, seq_len: 4K}]
parameters:
  - {path: array_2d.rows, values: [64, 128]}
"""


def test_configurations_each_with_arch_and_mapping(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, CONFIGS))
    assert [(c.name, c.arch, c.mapping.name) for c in sweep.configurations] == \
        [("FLAT", "flat-cloud", "flat"), ("FuseMax", "fusemax-cloud", "fusemax")]


@pytest.mark.parametrize("text, line, words", [
    (CONFIGS + "variants: [fusemax-1pass]\narch: fusemax-cloud\n", 1, ["exactly one of 'variants'"]),
    (CONFIGS.replace("name: FuseMax", "name: FLAT"), 4, ["'FLAT' is used twice"]),
    (CONFIGS.replace("arch: flat-cloud", "arch: flat-clod"), 3, ["unknown architecture preset 'flat-clod'",
                                                                 "did you mean 'flat-cloud'"]),
    (CONFIGS.replace("mapping: flat}", "mapping: flatt}"), 3, ["unknown mapping 'flatt'"]),
    (CONFIGS + "mapping: auto\n", 8, ["'mapping' goes inside each configuration"]),
])
def test_configuration_errors(tmp_path, text, line, words):
    path = write_sweep(tmp_path, text)
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    assert str(info.value).startswith(f"{path}:{line}"), str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)

"""The base layer: YAML/JSON reader, field reader, safe output, and its place below everything."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from einloom.base import Field, FieldReader, load_json, load_yaml, parse_size
from einloom.base.errors import EinloomError, InputError, Location, SpecError, WorkloadError
from einloom.base.output import output_file, output_folder, write_atomic, write_text

BASE = Path(__file__).resolve().parents[2] / "einloom" / "base"


def test_base_imports_nothing_of_einloom_but_itself():
    for path in BASE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("einloom"):
                assert node.module.startswith("einloom.base"), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("einloom") and not a.name.startswith("einloom.base")
                               for a in node.names), path.name


def test_old_import_paths_still_work():
    from einloom.einsum.errors import SpecError as OldSpecError
    from einloom.einsum.yamlio import load_yaml as old_load_yaml
    from einloom.errors import SpecError as TopSpecError
    assert OldSpecError is SpecError is TopSpecError and old_load_yaml is load_yaml


def test_line_map_and_merge_keys():
    data, lines = load_yaml("f.yaml", text="base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd: [a, b]\n")
    assert data == {"base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 3}, "d": ["a", "b"]}
    assert lines.line(("c", "y")) == 4 and lines.line(("d", 1)) == 5
    assert str(lines.at("d", 1)) == "f.yaml:5: d[1]"


def test_aliases_within_the_budget_are_fine():
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"
    data, _ = load_yaml("f.yaml", text=text)
    assert data["b"] == [[1, 2, 3]] * 3


@pytest.mark.parametrize("text, message, line", [
    ("a: 1\na: 2\n", "duplicate key 'a' (first at line 1)", 2),
    ("a: &x [*x]\n", "self-referencing anchor", 1),
    ("a: !!python/name:os.system\n", "unsupported YAML tag '!!python/name:os.system'", 1),
    ("a:\n  b: 1\n  b: 2\n", "duplicate key 'b'", 3),
    ("x: 1\n? [a]\n: 2\n", "a key is a list", 2),
])
def test_refused_documents(text, message, line):
    with pytest.raises(SpecError) as info:
        load_yaml("f.yaml", text=text)
    assert message in str(info.value) and info.value.location.line == line


def test_json_reader_refuses_duplicates_and_nan(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{\n "a": 1,\n "a": 2\n}')
    with pytest.raises(WorkloadError, match=r"c.json:3: duplicate key 'a'"):
        load_json(path, error=WorkloadError)
    path.write_text('{"a": NaN}')
    with pytest.raises(WorkloadError, match="NaN is not a JSON number"):
        load_json(path, error=WorkloadError)
    path.write_text('{\n "a": 1,\n "b": [2]\n}')
    data, lines = load_json(path, error=WorkloadError)
    assert data == {"a": 1, "b": [2]} and lines.line(("b",)) == 3


def test_error_text_is_always_one_line():
    error = SpecError("bad\nthing", location=Location("f\n.yaml", 3, "a\x00b"), hint="x\ny")
    assert "\n" not in str(error) and "\\n" in str(error)


@pytest.mark.parametrize("value, expected", [(1024, 1024), ("4K", 4096), ("4k", 4096), ("1M", 2 ** 20),
                                             (" 16 K ", 16384), (2048.0, 2048)])
def test_parse_size(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "16X", "", "1e3", math.nan, math.inf, None, [4]])
def test_parse_size_refuses(value):
    with pytest.raises(ValueError):
        parse_size(value)


FIELDS = (Field("n", "int", required=True, low=1, high=100), Field("x", "number", default=1.5),
          Field("mode", "choice", choices=("fast", "slow"), default="fast"), Field("len", "size", aliases=("L",)))


def test_declarative_fields_read_defaults_and_aliases():
    reader = FieldReader(None, WorkloadError, file="w.yaml")
    assert reader.fields({"n": 3, "L": "2K"}, (), FIELDS) == {"n": 3, "x": 1.5, "mode": "fast", "len": 2048}


@pytest.mark.parametrize("data, message", [
    ({"n": 0}, "n: expected a positive integer, got 0"),
    ({"n": 101}, "n: 101 is over the limit of 100"),
    ({"n": 3, "x": math.nan}, "x: expected a finite number, got NaN"),
    ({"n": 3, "x": "1e3x"}, "x: expected a number, got '1e3x'"),
    ({"n": 3, "mode": "fats"}, "mode: unknown mode 'fats' (hint: did you mean 'fast'?"),
    ({"n": 3, "nn": 1}, "nn: unknown key 'nn' (hint: did you mean 'n'?"),
    ({}, "missing required field 'n'"),
    ({"n": True}, "n: expected an integer, got the boolean True"),
])
def test_declarative_field_errors(data, message):
    reader = FieldReader(None, WorkloadError, file="w.yaml")
    with pytest.raises(WorkloadError) as info:
        reader.fields(data, (), FIELDS)
    assert message in str(info.value) and str(info.value).startswith("w.yaml")


def test_yaml_1_1_exponent_text_is_a_number():
    reader = FieldReader(None, WorkloadError)
    assert reader.number("1e3", ("x",)) == 1000.0
    assert reader.integer("1e3", ("x",), allow_integral_float=True) == 1000


def test_output_file_creates_parents_and_writes_into_folders(tmp_path):
    target = output_file(tmp_path / "a" / "b" / "out.npz", "--out", suffix=".npz")
    assert target.parent.is_dir() and not target.exists()
    folder = tmp_path / "results"
    folder.mkdir()
    assert output_file(folder, "--out", default_name="outputs.npz") == folder / "outputs.npz"
    with pytest.raises(InputError, match="--out: cannot write .*: it is a folder"):
        output_file(folder, "--out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="a file is in the way"):
        output_file(tmp_path / "file" / "x.txt", "--dot")
    with pytest.raises(InputError, match="it is a file, and a folder is needed"):
        output_folder(tmp_path / "file", "-o")


def test_write_atomic_leaves_no_partial_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match="No space left on device"):
        write_atomic(path, "--out", broken)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    assert write_text(path, "new", "--out").read_text() == "new"


def test_every_error_class_exits_2_but_failed_checks_exit_1():
    from einloom.base.errors import CheckFailed
    assert EinloomError("x").exit_code == 2 and CheckFailed("x").exit_code == 1

"""Hypothesis fuzzing of every reader: random mutations of every shipped example file.

For each input kind (specs, architectures, RTL architectures, workloads, HuggingFace configs,
mappings, experiments, ``--inputs`` archives) the shipped files are mutated at random -- a line
replaced by a hostile value (NaN, infinity, booleans, huge numbers, aliases, tags, control
characters), deleted, duplicated, or a character inserted or removed -- and read with the kind's
reader.  Each example must give either a valid object whose numbers obey the readers' rules (finite,
positive, whole where they are sizes, within the documented limits) or an ``EinloomError`` whose
message is one line; anything else (another exception, a hang, a huge allocation) fails.  Every
example runs under the time and memory cap of tests/hostile.py.

Budget (derandomized in CI, see tests/conftest.py): ``EXAMPLES`` examples per reader.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from einloom.base.errors import EinloomError
from einloom.base.limits import MAX_BATCH, MAX_RANK_SIZE, MAX_SEQ_LEN
from einloom.base.yamlio import load_yaml
from hostile import capped

ROOT = Path(__file__).resolve().parents[1]
#: Examples per reader (about 2 minutes in total on the 2-core CI machine at most; usually far less).
EXAMPLES = 80
SETTINGS = dict(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

HOSTILE = [".nan", ".inf", "-.inf", "-1", "0", "2.5", "yes", "no", "~", "[]", "{}", "1e999", "1.0e+400",
           "99999999999999999999", "'16K'", "&a [*a]", "!!python/object:os.system x", "!include x.yaml",
           "\"\\x00\"", "[[[[[[[[]]]]]]]]", "-", "'", "*undefined", "0x10", "1_000", "16K", "NaN", "null"]

SHIPPED = {
    "spec": sorted((ROOT / "einsum" / "library").glob("*.yaml")),
    "arch": sorted(p for p in (ROOT / "examples" / "archs").glob("*.yaml") if not p.name.startswith("rtl-"))
    + sorted((ROOT / "cost_models" / "presets").glob("*.yaml")),
    "rtl-arch": sorted((ROOT / "examples" / "archs").glob("rtl-*.yaml")),
    "workload": sorted((ROOT / "examples" / "workloads").glob("*.yaml")),
    "hf-config": sorted((ROOT / "examples" / "workloads").glob("*.json")),
    "mapping": sorted((ROOT / "examples" / "mappings").glob("*.yaml")),
    "experiment": sorted((ROOT / "examples" / "experiments").glob("*.yaml")),
}


@st.composite
def mutated(draw, paths: list[Path]) -> tuple[Path, str]:
    path = draw(st.sampled_from(paths))
    lines = path.read_text().splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["value", "value", "value", "line", "delete", "duplicate", "char", "drop"]))
        line = lines[i]
        if kind == "value" and ":" in line:
            key, _, _ = line.partition(":")
            lines[i] = f"{key}: {draw(st.sampled_from(HOSTILE))}"
        elif kind == "line":
            lines[i] = draw(st.sampled_from(HOSTILE))
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "char":
            j = draw(st.integers(0, len(line)))
            lines[i] = line[:j] + draw(st.sampled_from(list("[]{}:,-&*!'\"#|>%@`\t\x00\x7f9."))) + line[j:]
        elif kind == "drop" and line:
            j = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:j] + line[j + 1:]
    return path, "\n".join(lines) + "\n"


def _one_line(error: EinloomError) -> None:
    text = str(error)
    assert "\n" not in text and text.strip(), repr(text)


def _read(kind: str, path: Path, text: str):
    """Read ``text`` (a mutation of ``path``) with the reader of ``kind``."""
    if kind == "spec":
        from einloom.einsum import parse_cascade_text
        return parse_cascade_text(text, path.name)
    if kind == "hf-config":
        from einloom.cost_models.workload import workload_from_hf_config
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / "config.json"
            file.write_text(text)
            return workload_from_hf_config(file, seq_len=1024)
    if kind == "experiment":
        from einloom.experiment import load_experiment
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / path.name
            file.write_text(text)
            for sibling in path.parent.glob("*.csv"):
                (Path(folder) / sibling.name).write_text(sibling.read_text())
            return load_experiment(file)
    data, lines = load_yaml(path.name, text=text)
    if kind == "arch":
        from einloom.cost_models.arch import arch_from_dict
        return arch_from_dict(data, lines)
    if kind == "rtl-arch":
        from einloom.cost_models.arch import arch_from_dict
        from einloom.rtl.config import RtlConfig
        return RtlConfig.from_arch(arch_from_dict(data, lines, file=path.name))
    if kind == "workload":
        from einloom.cost_models.workload import workload_from_dict
        return workload_from_dict(data, lines)
    if kind == "mapping":
        from einloom.mapper.mapping import mapping_from_dict
        return mapping_from_dict(data, lines)
    raise AssertionError(kind)


def _positive_int(value, high=None) -> None:
    assert isinstance(value, int) and not isinstance(value, bool) and value >= 1, value
    if high is not None:
        assert value <= high, value


def _positive_finite(value) -> None:
    assert isinstance(value, float) and math.isfinite(value) and value > 0, value


def _check_valid(kind: str, obj) -> None:
    """A value the reader accepted obeys the rules (nothing silently accepted)."""
    if kind == "arch":
        _positive_finite(obj.clock_mhz)
        _positive_finite(obj.dram.bandwidth_GBps)
        for array in (obj.array_2d, obj.array_1d):
            _positive_int(array.rows)
            _positive_int(array.cols)
            for unit in array.units.values():
                for value in (unit.energy_pj, unit.area_um2):
                    if value is not None:
                        _positive_finite(value)
    elif kind == "rtl-arch":
        _positive_finite(obj.clock_mhz)
        for value in (obj.rows, obj.cols, obj.head_dim, obj.value_dim, obj.max_keys, obj.max_queries):
            _positive_int(value)
    elif kind in ("workload", "hf-config"):
        for value in obj.rank_sizes().values():
            _positive_int(value, MAX_RANK_SIZE)
        _positive_int(obj.batch, MAX_BATCH)
        _positive_int(obj.seq_len_kv, MAX_SEQ_LEN)
    elif kind == "mapping":
        for levels in obj.tiling.values():
            for factor in levels.values():
                _positive_int(factor)
        for value in obj.params.values():
            _positive_int(value)
    elif kind == "experiment":
        for n in obj.seq_lens:
            _positive_int(n, MAX_SEQ_LEN)
    elif kind == "spec":
        for expr in obj.params.values():
            value = getattr(expr, "value", None)
            assert value is None or math.isfinite(value) or math.isinf(value) is False


@pytest.mark.parametrize("kind", sorted(SHIPPED))
def test_every_kind_has_shipped_files(kind):
    assert SHIPPED[kind], kind


def _fuzz(kind: str):
    @settings(**SETTINGS)
    @given(mutated(SHIPPED[kind]))
    def run(sample):
        path, text = sample
        with capped(seconds=30):
            try:
                obj = _read(kind, path, text)
            except EinloomError as error:
                _one_line(error)
                return
        _check_valid(kind, obj)

    return run


test_fuzz_spec = _fuzz("spec")
test_fuzz_arch = _fuzz("arch")
test_fuzz_rtl_arch = _fuzz("rtl-arch")
test_fuzz_workload = _fuzz("workload")
test_fuzz_hf_config = _fuzz("hf-config")
test_fuzz_mapping = _fuzz("mapping")
test_fuzz_experiment = _fuzz("experiment")


def _npz_bytes() -> bytes:
    import io
    buffer = io.BytesIO()
    np.savez(buffer, Q=np.ones((4, 8)), K=np.ones((4, 8)), V=np.ones((4, 8)))
    return buffer.getvalue()


NPZ = _npz_bytes()


@settings(**SETTINGS)
@given(st.lists(st.tuples(st.integers(0, len(NPZ) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(NPZ)))
def test_fuzz_inputs_archive(flips, cut):
    """Corrupted or truncated .npz archives: a clean error naming --inputs, or finite float arrays."""
    from einloom.commands.run import load_inputs
    from einloom.einsum import load_cascade
    data = bytearray(NPZ[:max(cut, 1)] if cut < len(NPZ) // 2 else NPZ)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    cascade = load_cascade("fusemax-1pass")
    with tempfile.TemporaryDirectory() as folder, capped(seconds=30):
        file = Path(folder) / "in.npz"
        file.write_bytes(bytes(data))
        try:
            arrays = load_inputs(str(file), cascade)
        except EinloomError as error:
            _one_line(error)
            assert "--inputs" in str(error)
            return
    for array in arrays.values():
        assert array.dtype == np.float64 and np.isfinite(array).all()

"""``einloom report hardware``: per variant the generated core, cycles, verify, area, Fmax, throughput."""
import csv
import io
import json
from pathlib import Path

import pytest

from einloom.cli import main
from einloom.report import hardware
from einloom.report.hardware_cache import RowCache

ARCHS = Path(__file__).resolve().parents[1] / "examples" / "archs"
TINY = str(ARCHS / "rtl-2x2-bf16.yaml")
SPECS = ["fusemax-1pass", "causal-1pass", "relu-attention", "mla-absorbed"]
RANKS = "P=4,M=6"
#: every row's JSON keys and the types they hold (None allowed where a figure may be absent)
SCHEMA = {"spec": str, "arch": str, "core": str, "number_format": str, "array": str, "ranks": dict, "mask": str,
          "refused_einsum": (str, type(None)), "reason": (str, type(None)), "fixed_reason": (str, type(None)),
          "units": list, "top": str, "cycles": (int, type(None)), "sim_cycles": (float, type(None)),
          "util_2d": (float, type(None)), "error_vs_fp64": (float, type(None)), "useful_ops": (int, type(None)), "dense_ops": (int, type(None)),
          "verify": (dict, type(None)), "area": (dict, type(None)), "fmax_mhz": (float, type(None)),
          "clock_mhz": (float, type(None)), "clock_source": (str, type(None)), "gops": (float, type(None)),
          "errors": list, "programs": list, "left_out": dict, "critical_path": (dict, type(None)), "cached": bool}


def _report(capsys, *extra):
    assert main(["report", "hardware", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hwcache"))


@pytest.fixture(scope="module")
def rows(cache_dir):
    """The four specs on the 2x2 bf16 core, no synthesis (computed once, cached in ``cache_dir``)."""
    out = []
    options = hardware.RowOptions(synth=False)
    cache = RowCache(Path(cache_dir), options)
    for spec in SPECS:
        row = hardware.hardware_row(spec, TINY, {"P": 4, "M": 6}, options)
        cache.store(cache.key(spec, TINY, {"P": 4, "M": 6}), row)
        out.append(row.to_dict())
    return {r["spec"]: r for r in out}


def test_each_variant_gets_the_core_the_generator_chooses(rows):
    from einloom.cost_models.arch import load_arch
    from einloom.rtl.attention import compute_cycles
    from einloom.rtl.config import RtlConfig
    assert {s: r["core"] for s, r in rows.items()} == {"fusemax-1pass": "fixed", "causal-1pass": "fixed",
                                                      "relu-attention": "lane", "mla-absorbed": "refused"}
    cfg = RtlConfig.from_arch(load_arch(TINY))
    assert rows["fusemax-1pass"]["cycles"] == compute_cycles(cfg, 4, 6, False)
    assert rows["causal-1pass"]["cycles"] == compute_cycles(cfg, 4, 6, True)
    assert rows["causal-1pass"]["mask"].startswith("causal") and rows["fusemax-1pass"]["mask"] == "none"
    assert rows["relu-attention"]["units"] == ["fn:relu", "mul", "select"]
    for r in rows.values():
        assert r["ranks"]["P"] == 4 and r["ranks"]["M"] == 6 and r["number_format"] == "bf16"


def test_lane_row_cycles_are_the_lane_core_model(rows):
    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import core_shape, plan_lanes, timing_of
    from einloom.sim.rtl_core import lane_core_cycles
    arch = load_arch(TINY)
    plan = plan_lanes(load_cascade("relu-attention"), arch, {"P": 4, "M": 6, "E": 8, "F": 8})
    model = lane_core_cycles(timing_of(plan, core_shape(arch, [plan])), 4, 6)
    row = rows["relu-attention"]
    assert row["cycles"] == model["compute_cycles"]
    assert row["util_2d"] == pytest.approx(model["mac_cycles"] / model["compute_cycles"], abs=1e-5)


def test_useful_ops_count_only_the_visible_pairs(rows):
    from einloom.rtl.fpga.throughput import attention_ops
    assert rows["fusemax-1pass"]["useful_ops"] == attention_ops(4, 6, 8, 8, False) == 2 * 4 * 6 * 16
    assert rows["causal-1pass"]["useful_ops"] == attention_ops(4, 6, 8, 8, True)
    assert rows["causal-1pass"]["useful_ops"] < rows["causal-1pass"]["dense_ops"]
    assert rows["relu-attention"]["useful_ops"] == rows["fusemax-1pass"]["useful_ops"]


def test_throughput_is_at_the_stated_clock_without_pnr(rows):
    r = rows["fusemax-1pass"]
    assert r["fmax_mhz"] is None and r["clock_mhz"] == 100.0 and r["clock_source"].startswith("stated")
    assert r["gops"] == pytest.approx(r["useful_ops"] / (r["cycles"] / 100e6) / 1e9)


def test_refused_row_names_the_einsum_and_has_no_figures(rows):
    r = rows["mla-absorbed"]
    # its stages (rtl/lanes/stages.py) share one build: the read stage's F = 8 differs from C = 24
    assert r["refused_einsum"] == "AV" and "value rank F = 8" in r["reason"] and "C = 24" in r["reason"]
    assert "mla-absorbed" in r["fixed_reason"]
    assert r["cycles"] is None and r["gops"] is None and r["area"] is None and r["useful_ops"] is None


def test_simulator_prediction_and_format_error_are_reported(rows):
    for spec in ("fusemax-1pass", "causal-1pass", "relu-attention"):
        assert rows[spec]["sim_cycles"] > 0 and rows[spec]["sim_note"] is None
        assert 0 < rows[spec]["error_vs_fp64"] < 0.1 and rows[spec]["error_note"] is None   # bf16 rounding


def test_json_schema_and_resume_from_cache(cache_dir, capsys, monkeypatch):
    def no_work(*_args, **_kwargs):
        raise AssertionError("a cached row was recomputed")
    monkeypatch.setattr(hardware, "hardware_row", no_work)
    data = _report(capsys, *SPECS, "--arch", TINY, "--ranks", RANKS, "--no-synth", "--cache-dir", cache_dir,
                   "--json")
    assert [r["spec"] for r in data["rows"]] == SPECS
    for row in data["rows"]:
        assert row["cached"] is True
        for key, kind in SCHEMA.items():
            assert isinstance(row[key], kind), (row["spec"], key, row[key])


def test_cached_only_shows_stored_rows_and_lists_the_rest_pending(cache_dir, capsys, monkeypatch, rows):
    monkeypatch.setattr(hardware, "hardware_row", lambda *a, **k: pytest.fail("--cached-only computed a row"))
    data = _report(capsys, "fusemax-1pass", "alibi", "--arch", TINY, "--ranks", RANKS, "--no-synth",
                   "--cache-dir", cache_dir, "--cached-only", "--json")
    assert [(r["spec"], r["core"]) for r in data["rows"]] == [("fusemax-1pass", "fixed"), ("alibi", "pending")]
    assert main(["report", "hardware", "alibi", "--arch", TINY, "--ranks", RANKS, "--no-synth", "--cache-dir",
                 cache_dir, "--cached-only"]) == 0
    assert "pending (1, not in the cache yet): alibi @ rtl-2x2-bf16" in capsys.readouterr().out


def test_a_tool_failure_is_shown_and_not_cached(tmp_path, capsys, monkeypatch):
    from einloom.base.errors import ToolError

    def broken(*_args, **_kwargs):
        raise ToolError("the testbench recorded no result")
    monkeypatch.setattr(hardware, "verify_design", broken)
    argv = ["report", "hardware", "fusemax-1pass", "--arch", TINY, "--ranks", RANKS, "--no-synth", "--verify",
            "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tool errors" in out and "verify: the testbench recorded no result" in out
    assert not list(tmp_path.glob("*.json"))          # the next run tries again


def test_a_changed_spec_is_recomputed(cache_dir, tmp_path, rows):
    spec = tmp_path / "mine.yaml"
    source = (Path(__file__).resolve().parents[1] / "einsum" / "library" / "fusemax-1pass.yaml").read_text()
    spec.write_text(source)
    cache = RowCache(Path(cache_dir), hardware.RowOptions(synth=False))
    first = cache.key(str(spec), TINY, {"P": 4, "M": 6})
    spec.write_text(source.replace("M0: 16", "M0: 8"))
    assert cache.key(str(spec), TINY, {"P": 4, "M": 6}) != first
    assert cache.key(str(spec), TINY, {"P": 4, "M": 7}) != cache.key(str(spec), TINY, {"P": 4, "M": 6})


def test_out_writes_json_csv_text_and_figure(cache_dir, tmp_path, capsys, rows):
    out = tmp_path / "hw"
    assert main(["report", "hardware", *SPECS, "--arch", TINY, "--ranks", RANKS, "--no-synth", "--cache-dir",
                 cache_dir, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "refused (1)" in text and "mla-absorbed" in text and "relu-attention" in text
    assert json.loads((out / "hardware.json").read_text())["rows"][0]["spec"] == "fusemax-1pass"
    table = list(csv.DictReader(io.StringIO((out / "hardware.csv").read_text())))
    assert [r["core"] for r in table] == ["fixed", "fixed", "lane", "refused"]
    assert table[3]["cycles"] == "" and table[3]["refused_einsum"] == "AV"
    assert "hardware per variant" in (out / "hardware.txt").read_text()
    # no area without synthesis: no figure (area vs throughput needs both)
    assert not (out / "hardware.png").exists()


def test_plot_marks_each_arch(tmp_path, rows):
    from einloom.report.hardware_output import plot
    fake = []
    for arch, luts in (("a", 1000), ("b", 2000)):
        for r in rows.values():
            if r["core"] != "refused":
                fake.append({**r, "arch": arch, "area": {"luts": luts}})
    path = plot(fake, tmp_path / "hw.png")
    assert path is not None and path.stat().st_size > 5000
    from einloom.report.hardware_output import front_table
    text = front_table(fake)     # per arch the same LUTs: the front is the fastest variant of each
    fastest = max((r for r in fake if r["arch"] == "a"), key=lambda r: r["gops"])["spec"]
    assert text.count(fastest) == 2 and len(text.splitlines()) == 5


@pytest.mark.parametrize("argv, flag", [
    (["no-such-variant", "--arch", TINY], "no-such-variant"),
    (["fusemax-1pass", "--arch", "rtl-9x9-int3"], "--arch"),
    (["fusemax-1pass", "--arch", str(ARCHS / "fusemax-edge.yaml")], "rtl"),
    (["fusemax-1pass", "--arch", TINY, "--ranks", "P=0"], "--ranks"),
    (["fusemax-1pass", "--arch", TINY, "--no-synth", "--pnr"], "--pnr"),
    (["fusemax-1pass", "--arch", TINY, "--target", "xilinx", "--pnr"], "--pnr"),
])
def test_bad_input_is_one_line(argv, flag, capsys):
    assert main(["report", "hardware", *argv, "--no-synth"] if "--pnr" not in argv else
                ["report", "hardware", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "Traceback" not in err


def test_unwritable_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "hardware_row", lambda *a, **k: pytest.fail("ran before checking --out"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", "hardware", "fusemax-1pass", "--arch", TINY, "--no-synth", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err


def _fake_synth(fmax):
    """A stand-in for Yosys/nextpnr: fixed area, ``fmax`` when routed (the programmable build's logic is
    what these tests check, not the tools)."""
    def synth(row, design, options, cache, say):
        row.area = {"luts": 1000, "ffs": 900, "dsps": 4, "brams": 0, "carry": 10}
        row.fmax_mhz = fmax if options.pnr else None
    return synth


def test_programmable_build_covers_every_lane_variant_and_names_the_rest():
    from einloom.cost_models.arch import load_arch
    plans, names, left = hardware.shared_lane_plans(SPECS, load_arch(TINY), {"P": 4, "M": 6})
    assert names == ["fusemax-1pass", "causal-1pass", "relu-attention"]     # the fixed core's too: the lanes run them
    assert set(left) == {"mla-absorbed"} and left["mla-absorbed"]          # the lane compiler's refusal
    assert len(plans) == 3


def test_programmable_row_gives_its_fmax_to_the_lane_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "_synthesize", _fake_synth(50.0))
    data = _report(capsys, *SPECS, "--arch", TINY, "--ranks", RANKS, "--pnr-programmable",
                   "--cache-dir", str(tmp_path), "--json")
    rows = {r["spec"]: r for r in data["rows"]}
    shared = rows["programmable: fusemax-1pass, causal-1pass, relu-attention"]
    assert shared["core"] == hardware.PROGRAMMABLE and shared["fmax_mhz"] == 50.0 and shared["area"]["luts"] == 1000
    assert set(shared["left_out"]) == {"mla-absorbed"}
    assert shared["programs"] == ["fusemax-1pass", "causal-1pass", "relu-attention"]
    lane = rows["relu-attention"]
    assert lane["fmax_mhz"] is None and lane["clock_mhz"] == 50.0 and lane["clock_source"] == hardware.SHARED_FMAX
    assert lane["gops"] == pytest.approx(lane["useful_ops"] / (lane["cycles"] / 50e6) / 1e9)
    fixed = rows["fusemax-1pass"]                    # the fixed core's clock is its own (stated here)
    assert fixed["core"] == "fixed" and fixed["clock_source"].startswith("stated")
    assert main(["report", "hardware", *SPECS, "--arch", TINY, "--ranks", RANKS, "--pnr-programmable",
                 "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "lane (programmable)" in out and "Fmax of the programmable build" in out
    assert "not in the programmable lane build" in out and "mla-absorbed" in out


def test_programmable_row_without_pnr_leaves_the_stated_clock(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "_synthesize", _fake_synth(50.0))
    data = _report(capsys, "relu-attention", "--arch", TINY, "--ranks", RANKS, "--programmable-build",
                   "--cache-dir", str(tmp_path), "--json")
    lane, shared = data["rows"]
    assert shared["core"] == hardware.PROGRAMMABLE and shared["fmax_mhz"] is None
    assert lane["clock_source"].startswith("stated")


@pytest.mark.parametrize("flag", ["--programmable-build", "--pnr-programmable"])
def test_programmable_build_needs_synthesis(flag, capsys):
    assert main(["report", "hardware", "relu-attention", "--arch", TINY, "--no-synth", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "Traceback" not in err


@pytest.mark.slow
def test_yosys_area_and_amaranth_verify_on_the_tiny_core(tmp_path, capsys):
    """Area from Yosys (cached by Verilog hash) and the lane core verified in Amaranth's simulator."""
    data = _report(capsys, "relu-attention", "mla-absorbed", "--arch", TINY, "--ranks", "P=8,M=12", "--verify",
                   "amaranth", "--cache-dir", str(tmp_path / "rows"), "--json")
    lane, refused = data["rows"]
    assert lane["verify"] == {**lane["verify"], "tool": "amaranth", "passed": 2, "total": 2}
    assert lane["verify"]["measured_cycles"] == lane["cycles"]
    assert lane["area"]["luts"] > 100 and lane["area"]["ffs"] > 100 and lane["part"]
    assert refused["core"] == "refused" and refused["area"] is None

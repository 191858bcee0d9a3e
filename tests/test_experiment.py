"""Experiment files, the batch runner, results.csv/json and the report (figures, mean-ratio tables).

The runner is tested against a stand-in evaluator with known ratios (FuseMax 3x faster at half the
energy of FLAT), so the arithmetic is checked exactly; one test runs the real mapper on the smoke
experiment.
"""
from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest

from einloom import experiment as exp_mod
from einloom.cli import main
from einloom.errors import ExperimentError
from einloom.experiment import (EvalPoint, format_seq_len, load_experiment, mean_ratios, parse_seq_len,
                                run_experiment)
from einloom.report.experiment import summary_markdown, summary_tables, write_report

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "examples" / "experiments" / "smoke.yaml"
PAPER = ROOT / "examples" / "experiments" / "fusemax-paper.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stand_in(point: EvalPoint) -> dict:
    """A roofline stand-in: FuseMax (1-pass) 3x faster and half the energy of the 3-pass cascade."""
    w = point.workload
    macs = w.attention_macs()
    if point.scope == "end_to_end":
        macs += sum(m * k * n for m, k, n in w.linear_layers().values())
    fused = point.cascade.name == "fusemax-1pass"
    pes = (point.array_size or 256) ** 2
    return {"latency_s": macs / (pes * 1e9) * (1 if fused else 3), "energy_pj": macs * (1.0 if fused else 2.0),
            "util_2d": 0.9 if fused else 0.25, "util_1d": 0.5, "dram_bytes": 4.0 * macs ** 0.5,
            "per_einsum_activity_2d": {"QK": 0.45, "SLNV": 0.45} if fused else {"QK": 0.1, "AV": 0.1},
            "energy_breakdown_pj": {"2d.mac": macs * 0.5}, "actions": {"2d.mac": macs}}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


GOOD = """\
name: t
models: [bert]
seq_lens: [1K]
configurations:
  - {name: FLAT, cascade: softmax-3pass, arch: flat-cloud, mapping: flat}
  - {name: FuseMax, cascade: fusemax-1pass, arch: fusemax-cloud, mapping: fusemax}
"""


# --------------------------------------------------------------------------------------------------
# The file format and its error messages
# --------------------------------------------------------------------------------------------------

def test_smoke_and_paper_files_load():
    smoke = load_experiment(SMOKE)
    assert smoke.models == ("bert",) and smoke.seq_lens == (1024, 4096)
    assert smoke.scopes == ("attention", "end_to_end") and smoke.baseline == "FLAT"
    assert smoke.area_sweep.sizes == (64, 128)
    paper = load_experiment(PAPER)
    assert paper.models == ("bert", "trxl", "t5", "xlm")
    assert paper.seq_lens == tuple(2 ** k for k in (10, 12, 14, 16, 18, 20))
    assert [c.name for c in paper.configurations] == ["Unfused", "FLAT", "FuseMax"]
    assert paper.baseline == "Unfused" and paper.compare_to == ("Unfused", "FLAT")
    assert paper.activity == ("bert", 65536)


def test_defaults(tmp_path):
    e = load_experiment(write(tmp_path, GOOD))
    assert e.scopes == ("attention",) and e.baseline == "FLAT" and e.compare_to == ("FLAT",)
    assert e.output == "results/t" and e.area_sweep is None


@pytest.mark.parametrize("text, s", [("1K", 1024), ("4k", 4096), ("1M", 2 ** 20), (512, 512), ("300", 300)])
def test_parse_seq_len(text, s):
    assert parse_seq_len(text) == s
    assert parse_seq_len(format_seq_len(s)) == s


@pytest.mark.parametrize("bad", ["0", "-1K", "1.5K", "abc", True, 0])
def test_parse_seq_len_rejects(bad):
    with pytest.raises(ValueError):
        parse_seq_len(bad)


@pytest.mark.parametrize("old, new, line, field, words", [
    ("seq_lens: [1K]", "seq_lens: [1K, lots]", 3, "seq_lens[1]", "expected a sequence length"),
    ("name: t\n", "name: t\nbasline: FLAT\n", 2, "basline", "unknown key 'basline'"),
    ("seq_lens: [1K]", "seq_lens: [1K]\nscope: everything", 4, "scope", "unknown scope 'everything'"),
    ("seq_lens: [1K]", "seq_lens: [1K]\nbaseline: Flat", 4, "baseline", "no configuration named 'Flat'"),
    ("mapping: flat}", "mapping: flat, search: {objective: latency}}", 5, "configurations[0]",
     "exactly one of 'mapping' and 'search'"),
    ("mapping: fusemax}", "search: {objective: speed}}", 6, "configurations[1].search.objective",
     "unknown objective 'speed'"),
    ("name: FuseMax,", "name: FLAT,", 6, "configurations[1].name", "used twice"),
    ("arch: flat-cloud,", "arch: flat-clod,", 5, "configurations[0].arch", "unknown architecture preset"),
    ("cascade: fusemax-1pass", "cascade: no-such-cascade", 6, "configurations[1].cascade", "no-such-cascade"),
    ("models: [bert]", "models: [bert, brt]", 2, "models[1]", "unknown workload 'brt'"),
    ("mapping: flat}", "mapping: flatt}", 5, "configurations[0].mapping", "unknown baseline mapping 'flatt'"),
    ("mapping: flat}", "mapping: missing.yaml}", 5, "configurations[0].mapping", "file not found"),
    ("seq_lens: [1K]", "seq_lens: [1K]\narea_sweep: {model: bert, seq_len: 1K, sizes: [16, -2]}", 4,
     "area_sweep.sizes[1]", "positive integer array size"),
    ("seq_lens: [1K]", "seq_lens: [1K]\nactivity: {model: bert, seq_len: 2K}", 4, "activity.seq_len",
     "not one of the experiment's seq_lens"),
])
def test_validation_messages_name_line_and_field(tmp_path, old, new, line, field, words):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    err = info.value
    assert err.location.file == str(path)
    assert err.location.line == line, str(err)
    assert err.location.field == field, str(err)
    assert words in str(err)
    assert str(err).startswith(f"{path}:{line}: {field}: ")


def test_missing_required_field_and_syntax_error(tmp_path):
    with pytest.raises(ExperimentError, match="missing required field 'configurations'"):
        load_experiment(write(tmp_path, "models: [bert]\nseq_lens: [1K]\n"))
    with pytest.raises(ExperimentError) as info:
        load_experiment(write(tmp_path, "models: [bert\nseq_lens: 1K\n"))
    assert "YAML syntax error" in str(info.value) and info.value.location.line is not None
    with pytest.raises(ExperimentError, match="file not found"):
        load_experiment(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------------------------------
# Running the smoke experiment: results.csv / results.json
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    results = run_experiment(load_experiment(SMOKE), stand_in, progress=False)
    json_path, csv_path = results.write(out)
    written = write_report(json_path, out)
    return results, out, json_path, csv_path, written


def test_results_json_rows(smoke_run):
    results, out, json_path, _, _ = smoke_run
    data = json.loads(json_path.read_text())
    rows = data["rows"]
    keys = [(r["model"], r["seq_len"], r["configuration"], r["scope"]) for r in rows]
    assert keys == [("bert", n, c, s) for n in (1024, 4096) for c in ("FLAT", "FuseMax")
                    for s in ("attention", "end_to_end")]
    assert data["experiment"]["name"] == "smoke" and data["evaluator"].endswith("stand_in")
    for r in rows:
        assert r["error"] is None
        expected_speedup, expected_energy = (3.0, 0.5) if r["configuration"] == "FuseMax" else (1.0, 1.0)
        assert r["speedup"] == pytest.approx(expected_speedup)
        assert r["energy_ratio"] == pytest.approx(expected_energy)
        assert r["area_um2"] > 0  # from the arch's area report when the evaluator gives none
    # the stand-in's numbers are stored as computed
    flat = next(r for r in rows if r["configuration"] == "FLAT" and r["scope"] == "attention" and r["seq_len"] == 4096)
    macs = 64 * 12 * 4096 * 4096 * 128
    assert flat["latency_s"] == pytest.approx(macs / (65536 * 1e9) * 3)
    assert flat["energy_pj"] == pytest.approx(2.0 * macs)
    assert flat["actions"] == {"2d.mac": macs}
    sweep = data["area_sweep"]
    assert [(r["configuration"], r["array_size"]) for r in sweep] == [
        (c, s) for c in ("FLAT", "FuseMax") for s in (64, 128)]
    small, large = sweep[0], sweep[1]
    assert small["latency_s"] == pytest.approx(4 * large["latency_s"])
    assert small["area_um2"] < large["area_um2"]


def test_results_csv(smoke_run):
    results, _, json_path, csv_path, _ = smoke_run
    with open(csv_path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(results.rows) == 8
    assert list(table[0])[:7] == ["model", "seq_len", "configuration", "scope", "cascade", "arch", "mapping"]
    for col in ("latency_s", "energy_pj", "util_2d", "util_1d", "dram_bytes", "area_um2", "speedup",
                "energy_ratio", "activity_2d.QK", "activity_2d.SLNV", "activity_2d.AV"):
        assert col in table[0]
    rows = json.loads(json_path.read_text())["rows"]
    for line, row in zip(table, rows):
        assert float(line["latency_s"]) == pytest.approx(row["latency_s"])
        assert float(line["speedup"]) == pytest.approx(row["speedup"])
    fused = next(line for line in table if line["configuration"] == "FuseMax")
    assert fused["activity_2d.AV"] == "" and float(fused["activity_2d.SLNV"]) == 0.45
    assert fused["mapping"] == "fusemax" and fused["cascade"] == "fusemax-1pass"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_figures_are_valid_pngs(smoke_run):
    _, out, _, _, written = smoke_run
    names = {p.name for p in written}
    for name in ("speedup_attention.png", "energy_attention.png", "speedup_end_to_end.png",
                 "energy_end_to_end.png", "utilization.png", "activity_2d.png", "area_latency.png"):
        assert name in names
        width, height = _png_size(out / "figures" / name)
        assert width > 200 and height > 150
    import matplotlib.image
    assert matplotlib.image.imread(out / "figures" / "speedup_attention.png").ndim == 3


def test_summaries_embed_figures_and_table(smoke_run):
    _, out, _, _, _ = smoke_run
    md = (out / "summary.md").read_text()
    assert "![speedup_attention](figures/speedup_attention.png)" in md
    assert "| FuseMax | 3.000 | 0.500 | 2 |" in md
    page = (out / "summary.html").read_text()
    assert page.count("data:image/png;base64,") == 7
    assert "<td class='n'>3.000</td>" in page


def test_report_is_regenerated_from_results_json_alone(smoke_run, tmp_path):
    _, _, json_path, _, _ = smoke_run
    copy = tmp_path / "results.json"
    copy.write_text(json_path.read_text())
    written = write_report(copy, tmp_path / "again")
    assert (tmp_path / "again" / "summary.md").exists() and len(written) == 9


# --------------------------------------------------------------------------------------------------
# Mean-ratio arithmetic
# --------------------------------------------------------------------------------------------------

def _row(model, n, config, latency, energy, scope="attention"):
    return {"model": model, "seq_len": n, "configuration": config, "scope": scope, "latency_s": latency,
            "energy_pj": energy}


def test_mean_ratios_are_arithmetic_means_of_per_point_ratios():
    rows = [_row("a", 1, "base", 10.0, 100.0), _row("a", 1, "new", 5.0, 50.0),    # 2x, 0.5
            _row("a", 2, "base", 10.0, 100.0), _row("a", 2, "new", 1.0, 100.0),   # 10x, 1.0
            _row("b", 1, "base", 4.0, 10.0), _row("b", 1, "new", 4.0, 30.0),      # 1x, 3.0
            _row("b", 2, "base", 4.0, 10.0), _row("b", 2, "new", None, None),     # failed: left out
            _row("a", 1, "new", 1.0, 1.0, scope="end_to_end")]                    # no baseline there
    means = mean_ratios(rows, "base", "attention")
    assert means["new"]["speedup"] == pytest.approx((2 + 10 + 1) / 3)  # not the ratio of means (18/10)
    assert means["new"]["energy_ratio"] == pytest.approx((0.5 + 1.0 + 3.0) / 3)
    assert means["new"]["points"] == 3
    assert means["base"] == {"speedup": 1.0, "energy_ratio": 1.0, "points": 4}
    assert mean_ratios(rows, "base", "end_to_end")["new"] == {"speedup": None, "energy_ratio": None, "points": 0}


def test_summary_tables_against_each_reference():
    results = {"experiment": {"name": "x", "models": ["a"], "seq_lens": [1, 2], "scopes": ["attention"],
                              "baseline": "base", "compare_to": ["base", "new"],
                              "configurations": [{"name": "base", "cascade": "c", "arch": "a", "mapping": "m"},
                                                 {"name": "new", "cascade": "c", "arch": "a", "mapping": "m"}]},
               "rows": [_row("a", 1, "base", 10.0, 100.0), _row("a", 1, "new", 5.0, 50.0),
                        _row("a", 2, "base", 10.0, 100.0), _row("a", 2, "new", 1.0, 100.0)],
               "evaluator": "test", "elapsed_s": 0.0}
    tables = summary_tables(results)
    assert [t[0].split(",")[1].strip() for t in tables] == ["vs base (arithmetic mean of per-point ratios)",
                                                            "vs new (arithmetic mean of per-point ratios)"]
    (_, _, vs_base), (_, _, vs_new) = tables
    assert vs_base[1] == ["new", pytest.approx(6.0), pytest.approx(0.75), 2]
    assert vs_new[0] == ["base", pytest.approx((0.5 + 0.1) / 2), pytest.approx((2.0 + 1.0) / 2), 2]
    md = summary_markdown(results, [])
    assert "| new | 6.000 | 0.750 | 2 |" in md


def test_failed_points_are_recorded_and_left_out(tmp_path):
    from einloom.errors import MappingError

    def flaky(point):
        if point.configuration.name == "FuseMax" and point.seq_len == 4096:
            raise MappingError("does not fit")
        return stand_in(point)
    results = run_experiment(load_experiment(SMOKE), flaky, progress=False)
    failed = results.errors()  # 2 grid points (both scopes) and the 2 sweep points (also at 4K)
    assert len(failed) == 4 and all(r["error"] == "does not fit" and r["latency_s"] is None for r in failed)
    assert mean_ratios(results.rows, "FLAT", "attention")["FuseMax"]["points"] == 1
    json_path, _ = results.write(tmp_path)
    assert "points failed" in (Path(write_report(json_path, tmp_path)[-2])).read_text()


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------

def test_cli_evaluate(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(exp_mod, "mapper_evaluate_point", stand_in)
    assert main(["evaluate", str(SMOKE), "-o", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "smoke: 8 points + 4 sweep points" in printed and "mean speedup vs FLAT" in printed
    for name in ("results.csv", "results.json", "summary.md", "summary.html", "figures/utilization.png"):
        assert (tmp_path / name).exists()
    assert main(["evaluate", str(SMOKE), "-o", str(tmp_path / "j"), "--json", "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["rows"]) == 8 and data["summary"][0]["rows"][1][1] == pytest.approx(3.0)


def test_cli_error_is_one_line(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("seq_lens: [1K]", "seq_lens: [1Q]"))
    assert main(["evaluate", str(path), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{path}:3: seq_lens[0]: expected a sequence length" in err


def test_real_mapper_on_smoke(tmp_path):
    """The default evaluator (einloom.mapper) on the smoke experiment: FuseMax beats FLAT on attention."""
    results = run_experiment(load_experiment(SMOKE), progress=False)
    assert not results.errors()
    means = mean_ratios(results.rows, "FLAT", "attention")
    assert means["FuseMax"]["speedup"] > 1.0 and means["FuseMax"]["points"] == 2
    e2e = [r for r in results.rows if r["scope"] == "end_to_end"]
    att = {(r["seq_len"], r["configuration"]): r["latency_s"] for r in results.rows if r["scope"] == "attention"}
    assert all(r["latency_s"] > att[(r["seq_len"], r["configuration"])] for r in e2e)


def test_mapping_file_and_search_configurations(tmp_path):
    from einloom.cost_models import load_arch, load_workload
    from einloom.mapper.baselines import baseline_mapping
    mapping = baseline_mapping("fusemax", "fusemax-1pass", load_arch("fusemax-cloud"), load_workload("bert"))
    (tmp_path / "fm.yaml").write_text(mapping.to_yaml())
    text = GOOD + ("  - {name: File, cascade: fusemax-1pass, arch: fusemax-cloud, mapping: fm.yaml}\n"
                   "  - {name: Best, cascade: fusemax-1pass, arch: fusemax-cloud, search: {objective: edp}}\n")
    e = load_experiment(write(tmp_path, text))
    file_config, search_config = e.configurations[2], e.configurations[3]
    assert file_config.mapping_is_file and file_config.mapping == str(tmp_path / "fm.yaml")
    assert search_config.search == {"objective": "edp"} and search_config.mapping_label == "search:edp"
    seen = []

    def record(point):
        seen.append(point.mapping)
        return stand_in(point)
    rows = run_experiment(e, record, progress=False).rows
    assert seen[0] == "flat" and seen[1] == "fusemax" and seen[2].name == "fusemax" and seen[3] is None
    assert [r["mapping"] for r in rows] == ["flat", "fusemax", str(tmp_path / "fm.yaml"), "search:edp"]


def test_bad_mapping_file_is_reported_at_the_experiment_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: bad\nbinding: {3d: [QK]}\n")
    path = write(tmp_path, GOOD.replace("mapping: fusemax}", "mapping: bad.yaml}"))
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert info.value.location.line == 6 and info.value.location.field == "configurations[1].mapping"
    assert "bad.yaml" in str(info.value)


# --------------------------------------------------------------------------------------------------
# The reference block: published results shown next to einloom's
# --------------------------------------------------------------------------------------------------

REFERENCE = GOOD + """\
reference:
  source: a paper
  headline:
    - {scope: attention, configuration: FuseMax, versus: FLAT, speedup: 2.0, energy_ratio: 0.5}
  points: points.csv
"""
POINTS = """\
# a comment line
model,seq_len,configuration,scope,latency_s,energy_pj,util_2d
bert,1K,FLAT,attention,0.03,4e12,0.25
bert,1024,FuseMax,attention,0.01,2e12,
"""


def test_reference_is_compared_in_the_summary(tmp_path):
    (tmp_path / "points.csv").write_text(POINTS)
    experiment = load_experiment(write(tmp_path, REFERENCE))
    assert experiment.reference.headline[0].speedup == 2.0
    assert [p["seq_len"] for p in experiment.reference.points] == [1024, 1024]
    results = run_experiment(experiment, stand_in, progress=False).to_dict()
    titles = [t for t, _, _ in summary_tables(results)]
    assert "against the published headline (a paper)" in titles
    headline = next(body for t, _, body in summary_tables(results) if t.startswith("against"))
    # stand-in: FuseMax 3x faster at half the energy -> +50% vs the claimed 2x, 0% vs 0.5
    assert headline[0][:5] == ["attention: FuseMax vs FLAT", "speedup", pytest.approx(3.0), 2.0, "+50.0%"]
    assert headline[1][4] == "+0.0%"
    per_point = {(p["configuration"], p["scope"]): p for p in exp_mod.point_comparison(
        results["rows"], results["experiment"]["reference"])}
    fused = next(r for r in results["rows"] if r["configuration"] == "FuseMax")
    assert per_point[("FuseMax", "attention")]["latency_s"]["mean"] == pytest.approx(fused["latency_s"] / 0.01)
    assert per_point[("FuseMax", "attention")]["util_2d_max_abs_diff"] is None
    assert per_point[("FLAT", "attention")]["util_2d_max_abs_diff"] == pytest.approx(0.0)


@pytest.mark.parametrize("csv_text,where,words", [
    ("model,seq_len,configuration,scope,latency_s\n", "points.csv:1", "missing column(s) energy_pj"),
    (POINTS.replace("0.03,4e12", "0.03,-4"), "points.csv:3", "energy_pj must be a positive number"),
    (POINTS.replace("bert,1K,FLAT", "bert,1K,Flat"), "points.csv:3", "configuration 'Flat' is not in the"),
    (POINTS.replace(",0.25", ",0.25,9"), "points.csv:3", "8 cells, the header has 7"),
])
def test_reference_points_errors_name_the_csv_line(tmp_path, csv_text, where, words):
    (tmp_path / "points.csv").write_text(csv_text)
    with pytest.raises(ExperimentError) as err:
        load_experiment(write(tmp_path, REFERENCE))
    assert where in str(err.value) and words in str(err.value)


def test_reference_headline_errors(tmp_path):
    (tmp_path / "points.csv").write_text(POINTS)
    with pytest.raises(ExperimentError, match=r"exp.yaml:10: reference.headline\[0\].versus: no configuration named 'FLA'"):
        load_experiment(write(tmp_path, REFERENCE.replace("versus: FLAT", "versus: FLA")))
    with pytest.raises(ExperimentError, match="needs speedup and/or energy_ratio"):
        load_experiment(write(tmp_path, REFERENCE.replace(", speedup: 2.0, energy_ratio: 0.5", "")))
    with pytest.raises(ExperimentError, match="scope 'end_to_end' is not evaluated"):
        load_experiment(write(tmp_path, REFERENCE.replace("scope: attention", "scope: end_to_end")))
    with pytest.raises(ExperimentError, match="missing required field 'source'"):
        load_experiment(write(tmp_path, REFERENCE.replace("  source: a paper\n", "")))

"""``einloom report crossval``: Markdown, HTML, plot and JSON from analytical vs simulated runs."""
import json

from einloom.cli import main


def test_report_crossval_writes_all_formats(tmp_path, capsys):
    rc = main(["report", "crossval", "--out", str(tmp_path), "--workloads", "bert", "--seqs", "1024",
               "--variants-at", "0"])
    assert rc == 0
    data = json.loads((tmp_path / "crossval.json").read_text())
    rows = data["points"]
    assert {r["mapping"] for r in rows} == {"fusemax", "flat", "unfused"}
    for r in rows:
        assert abs(r["difference"]) < 0.05 and r["extrapolation_exact"]
    md = (tmp_path / "crossval.md").read_text()
    assert "| bert | 1024 | fusemax | fusemax-1pass |" in md
    assert "<table>" in (tmp_path / "crossval.html").read_text()
    assert (tmp_path / "crossval.png").stat().st_size > 1000
    # simulator vs RTL: every verify case (less the deliberately corrupt one) of the three configs
    rtl = data["rtl"]
    assert {r["config"] for r in rtl} == {"rtl-4x4-int8", "rtl-8x8-int8", "rtl-4x4-bf16"}
    assert len(rtl) == 3 * 15 + 2          # + m128 on the two int8 cores (their buffers hold 128 keys)
    assert all(r["simulated_cycles"] == r["rtl_cycles"] and r["bits_equal"] for r in rtl)
    assert "## Simulator vs RTL" in md and "| rtl-4x4-int8 | m64 | 64 | 64 | no | 8,267 | 8,267 | +0 |" in md


def test_report_crossval_bad_seqs_one_line(tmp_path, capsys):
    rc = main(["report", "crossval", "--out", str(tmp_path), "--seqs", "1q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--seqs" in err


def test_report_crossval_bad_rtl_one_line(tmp_path, capsys):
    rc = main(["report", "crossval", "--out", str(tmp_path), "--rtl", "rtl-9x9-int3"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--rtl" in err


def test_variant_without_a_cloud_unit_runs_on_the_log_unit_arch():
    """split-kv-decode needs a log unit fusemax-cloud lacks: its row runs on fusemax-7nm-log-unit and says so,
    instead of being listed as not mapped."""
    from einloom.report.crossval import FALLBACK_ARCH, crossval_point
    row = crossval_point("bert", 4096, "default", "split-kv-decode")
    assert row.arch == FALLBACK_ARCH and row.explanation.startswith(f"on {FALLBACK_ARCH}")
    assert row.extrapolation_exact and abs(row.difference) < 0.05


def test_unmappable_point_is_listed_with_the_reason():
    from einloom.report.crossval import crossval_point
    row = crossval_point("bert", 1024, "fusemax", "sigmoid")        # no 1-pass softmax roles to bind
    assert row.simulated_cycles is None and row.explanation.startswith("not mapped: ")

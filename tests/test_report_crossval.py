"""``einloom report crossval``: Markdown, HTML, plot and JSON from analytical vs simulated runs."""
import json

from einloom.cli import main


def test_report_crossval_writes_all_formats(tmp_path, capsys):
    rc = main(["report", "crossval", "--out", str(tmp_path), "--workloads", "bert", "--seqs", "1024",
               "--variants-at", "0"])
    assert rc == 0
    rows = json.loads((tmp_path / "crossval.json").read_text())
    assert {r["mapping"] for r in rows} == {"fusemax", "flat", "unfused"}
    for r in rows:
        assert abs(r["difference"]) < 0.05 and r["extrapolation_exact"]
    md = (tmp_path / "crossval.md").read_text()
    assert "| bert | 1024 | fusemax | fusemax-1pass |" in md
    assert "<table>" in (tmp_path / "crossval.html").read_text()
    assert (tmp_path / "crossval.png").stat().st_size > 1000


def test_report_crossval_bad_seqs_one_line(tmp_path, capsys):
    rc = main(["report", "crossval", "--out", str(tmp_path), "--seqs", "1q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--seqs" in err

"""einloom.rtl.fpga: stat parsing, fit check, harness generation, result cache, CLI, one real ECP5 P&R.

The yowasp tools are real and required (they are dependencies); the first Yosys call of a fresh
machine compiles its WebAssembly (~50 s), later ones take about a second.  Designs are tiny.
"""
from __future__ import annotations

import argparse
import json

import pytest

from einloom.commands.synth import format_table
from einloom.einsum.errors import ToolError
from einloom.rtl.fpga import generate_harness, parse_ports, parse_stat_json, synthesize
from einloom.rtl.fpga.harness import HARNESS_TOP
from einloom.rtl.fpga.resources import Resources, check_pnr_report, fit_error, overflows
from einloom.rtl.fpga.targets import TARGETS

MAC8 = """\
module mac8(input wire clk, input wire rst, input wire signed [7:0] a, input wire signed [7:0] b,
            output reg signed [23:0] acc);
  always @(posedge clk)
    if (rst) acc <= 24'sd0;
    else acc <= acc + a * b;
endmodule
"""


def _mults(n: int) -> str:
    """A module with ``n`` independent registered 8x8 multipliers."""
    body = "\n".join(f"  always @(posedge clk) p{i} <= a[{i}*8+:8] * b[{i}*8+:8];" for i in range(n))
    regs = "\n".join(f"  reg [15:0] p{i};" for i in range(n))
    out = " ^ ".join(f"p{i}" for i in range(n))
    return (f"module mults(input wire clk, input wire [{8 * n - 1}:0] a, input wire [{8 * n - 1}:0] b,"
            f" output wire [15:0] y);\n{regs}\n{body}\n  assign y = {out};\nendmodule\n")


# --- parsing and fit logic (no tools) ---------------------------------------------------------------

def test_stat_json_parse_classifies_cells():
    stat = {"modules": {"\\top": {"num_cells_by_type": {"LUT4": 10}}},
            "design": {"num_cells_by_type": {"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7, "MULT18X18D": 2,
                                             "DP16KD": 1, "PFUMX": 4}}}
    res = parse_stat_json(json.dumps(stat), TARGETS["ecp5"], "top")
    assert res.counts == {"luts": 10, "ffs": 7, "dsps": 2, "brams": 1, "carry": 3, "lutram": 0}
    assert res.usage["luts"] == 10 + 2 * 3          # a CCU2C takes two LUT4 sites
    assert res.cells["PFUMX"] == 4                  # unclassified cells are kept, not counted
    xstat = {"design": {"num_cells_by_type": {"LUT6": 4, "LUT2": 1, "FDRE": 5, "DSP48E1": 1,
                                              "RAMB18E1": 3, "RAMB36E1": 1, "CARRY4": 2, "SRLC32E": 2}}}
    xres = parse_stat_json(json.dumps(xstat), TARGETS["xilinx"])
    assert xres.counts == {"luts": 5, "ffs": 5, "dsps": 1, "brams": 2.5, "carry": 2, "lutram": 2}
    assert xres.usage["luts"] == 7


def test_too_big_for_part_error_names_resource_and_larger_part():
    ecp5 = TARGETS["ecp5"]
    res = Resources(counts={"dsps": 40}, usage={"luts": 1000, "ffs": 500, "dsps": 40})
    assert [o.category for o in overflows(res, ecp5.part("25k"))] == ["dsps"]
    error = fit_error(ecp5, ecp5.part("25k"), res, chosen=True)
    assert isinstance(error, ToolError)
    text = str(error)
    assert "\n" not in text
    assert "does not fit ecp5 part 25k (LFE5U-25F): needs 40 MULT18X18D of 28" in text
    assert "--part 45k" in text
    huge = Resources(counts={"dsps": 400}, usage={"dsps": 400})
    text = str(fit_error(ecp5, ecp5.parts[-1], huge, chosen=False))
    assert "largest ecp5 part, 85k" in text and "400 MULT18X18D of 156" in text


def test_part_skipped_only_when_overflowing_in_more_than_dsps():
    from einloom.rtl.fpga.flow import _hopeless
    ice40 = TARGETS["ice40"]
    dsp_heavy = Resources(counts={}, usage={"luts": 1000, "ffs": 900, "dsps": 64, "brams": 4})
    assert not _hopeless(dsp_heavy, ice40.part("hx8k"))      # without DSPs it might still fit
    lut_heavy = Resources(counts={}, usage={"luts": 9000, "ffs": 900, "dsps": 64, "brams": 4})
    assert _hopeless(lut_heavy, ice40.part("hx8k"))          # more LUTs than hx8k even with DSPs


def test_pnr_report_overflow_is_a_tool_error():
    ecp5 = TARGETS["ecp5"]
    report = {"fmax": {"clk": {"achieved": 50.0}},
              "utilization": {"TRELLIS_COMB": {"used": 30000, "available": 24288},
                              "TRELLIS_IO": {"used": 4, "available": 197}}}
    with pytest.raises(ToolError, match=r"needs 30000 TRELLIS_COMB of 24288.*hint: use --part 45k"):
        check_pnr_report(report, ecp5, ecp5.part("25k"))
    check_pnr_report({"utilization": {"TRELLIS_IO": {"used": 4, "available": 197}}}, ecp5, ecp5.part("25k"))


def test_harness_generation_from_ports():
    amaranth_style = ("module core(b__0, clk, rst, acc__0, a__0);\n"
                      "  (* src = \"x\" *) input signed [7:0] b__0;\n  wire signed [7:0] b__0;\n"
                      "  input clk;\n  input rst;\n  output signed [23:0] acc__0;\n"
                      "  reg signed [23:0] acc__0 = 24'h0;\n  input [2:0] a__0;\nendmodule\n")
    ports = parse_ports(amaranth_style, "core")
    assert [(p.name, p.direction, p.width) for p in ports] == [
        ("b__0", "input", 8), ("clk", "input", 1), ("rst", "input", 1), ("acc__0", "output", 24),
        ("a__0", "input", 3)]
    assert [(p.name, p.width) for p in parse_ports(MAC8, "mac8")] == [
        ("clk", 1), ("rst", 1), ("a", 8), ("b", 8), ("acc", 24)]
    text = generate_harness(ports, "core")
    assert f"module {HARNESS_TOP}(input wire clk, input wire rst, input wire din, output wire dout);" in text
    assert "reg [10:0] shift_in" in text                      # 8 + 3 input bits, clk/rst excluded
    assert ".b__0(shift_in[7:0])" in text and ".a__0(shift_in[10:8])" in text
    assert ".clk(clk)" in text and ".rst(rst_q)" in text and ".acc__0(core_out[23:0])" in text
    # 24 outputs -> 6 -> 2 -> 1: three registered XOR stages after the output register.
    assert "reg [5:0] xor_1" in text and "reg [1:0] xor_2" in text and "assign dout = xor_3[0];" in text
    with pytest.raises(ToolError, match="no module 'nope'"):
        parse_ports(MAC8, "nope")


# --- real tools ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_synthesis_counts_ecp5_and_xilinx(tmp_path):
    ecp5 = synthesize(MAC8, "mac8", "ecp5", pnr=False, cache_dir=tmp_path)
    assert ecp5.part == "25k" and ecp5.part_selection == "smallest fitting" and ecp5.fits
    assert ecp5.resources.counts["dsps"] == 1 and ecp5.resources.cells["MULT18X18D"] == 1
    assert ecp5.resources.counts["ffs"] == 24                 # the accumulator
    assert ecp5.resources.counts["carry"] > 0 and ecp5.fmax_mhz is None and ecp5.pnr is None
    xilinx = synthesize(MAC8, "mac8", "xilinx", cache_dir=tmp_path)
    assert xilinx.resources.cells.get("DSP48E1") == 1 and xilinx.resources.counts["dsps"] == 1
    assert "IBUF" not in xilinx.resources.cells               # out-of-context: no I/O buffers
    assert any("synthesis only" in note for note in xilinx.notes)
    data = xilinx.to_dict()
    assert data["resources"]["dsps"] == 1 and data["target"] == "xilinx" and data["part"] == "xc7a35t"
    json.dumps(data)


def _cli(argv: list[str]) -> int:
    from einloom.commands import synth
    parser = argparse.ArgumentParser(prog="einloom")
    synth.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.slow
def test_cli_json_and_cache_hit(tmp_path, capsys):
    source = tmp_path / "mac8.v"
    source.write_text(MAC8)
    argv = ["synth", "--verilog", str(source), "--top", "mac8", "--target", "ice40", "--json",
            "--cache-dir", str(tmp_path / "cache")]
    assert _cli(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["cached"] == {"synth": False} and first["resources"]["dsps"] == 1
    assert _cli(argv) == 0
    captured = capsys.readouterr()
    second = json.loads(captured.out)
    assert second["cached"] == {"synth": True}
    assert "synth    cached" in captured.err
    assert second["resources"] == first["resources"]
    source.write_text(MAC8.replace("24'sd0", "24'sd1"))        # a changed design misses the cache
    assert _cli(argv) == 0
    assert json.loads(capsys.readouterr().out)["cached"] == {"synth": False}


@pytest.mark.slow
def test_cli_design_too_big_for_chosen_part(tmp_path, capsys, monkeypatch):
    from einloom import cli
    monkeypatch.setattr(cli, "COMMANDS", ["synth"])     # only this command, whatever else exists
    source = tmp_path / "mults.v"
    source.write_text(_mults(9))
    argv = ["synth", "--verilog", str(source), "--top", "mults", "--target", "ice40", "--part", "up5k",
            "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last == ("einloom synth: error: --part: design does not fit ice40 part up5k (iCE40UP5K): "
                    "needs 9 SB_MAC16 of 8 (hint: use --part hx8k, the smallest ice40 part it fits)")


@pytest.mark.slow
def test_ecp5_place_and_route_reports_fmax(tmp_path):
    result = synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path)
    assert result.part_selection == "chosen"
    assert result.fmax_mhz is not None and 5.0 < result.fmax_mhz < 1000.0
    assert result.pnr["harness_utilization"]["TRELLIS_IO"]["used"] == 4   # clk, rst, din, dout
    assert result.pnr["harness_utilization"]["MULT18X18D"]["used"] == 1
    assert result.cached == {"synth": False, "pnr": False} and result.pnr["router"] == "router2"  # auto
    again = synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path)
    assert again.cache_hit and again.fmax_mhz == result.fmax_mhz
    # another placement seed is another sample: routed again (synthesis reused), reported with its seed
    other = synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path, seed=2)
    assert other.cached == {"synth": True, "pnr": False} and (result.pnr["seed"], other.pnr["seed"]) == (1, 2)
    # a faster speed grade is timed by nextpnr's grade-8 delays: routed again, a higher Fmax, labelled
    fast = synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path, speed=8)
    assert fast.cached == {"synth": True, "pnr": False}
    assert (result.pnr["speed"], fast.pnr["speed"]) == (6, 8) and fast.fmax_mhz > result.fmax_mhz
    assert "speed grade 8" in format_table(fast, None, [])
    assert synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path, speed=8).cache_hit


def test_bad_seed_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(ToolError, match="seed"):
        synthesize(MAC8, "mac8", "ecp5", cache_dir=tmp_path, seed=-1)
    source = tmp_path / "mac8.v"
    source.write_text(MAC8)
    from einloom import cli
    for bad in ("x", "-3"):
        argv = ["synth", "--verilog", str(source), "--top", "mac8", "--target", "ecp5", "--seed", bad]
        try:
            rc = cli.main(argv)
        except SystemExit as stop:          # argparse's own error (not an int) exits with status 2
            rc = stop.code
        assert rc == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--seed" in err and "Traceback" not in err


def test_bad_speed_grade_is_a_one_line_error(tmp_path, capsys):
    for bad in (5, 9, True, "8"):
        with pytest.raises(ToolError, match="speed grade") as error:
            synthesize(MAC8, "mac8", "ecp5", cache_dir=tmp_path, speed=bad)
        assert error.value.location.field == "--speed"
    with pytest.raises(ToolError, match="ECP5 place and route only"):
        synthesize(MAC8, "mac8", "xilinx", cache_dir=tmp_path, speed=7)
    source = tmp_path / "mac8.v"
    source.write_text(MAC8)
    from einloom import cli
    for bad in ("5", "x", "6.5"):
        argv = ["synth", "--verilog", str(source), "--top", "mac8", "--target", "ecp5", "--speed", bad]
        try:
            rc = cli.main(argv)
        except SystemExit as stop:          # argparse's own error exits with status 2
            rc = stop.code
        assert rc == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--speed" in err and "speed grade" in err and "Traceback" not in err
    argv = ["synth", "--verilog", str(source), "--top", "mac8", "--target", "xilinx", "--speed", "8"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--speed" in err


def test_progress_spinner_on_terminal_and_in_logs():
    import io
    import time as _time
    from einloom.commands.synth import Spinner

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    spinner = Spinner(term)
    spinner("synth", "start")
    _time.sleep(0.5)
    spinner("pnr", "cached")
    spinner.close()
    text = term.getvalue()
    assert "\rsynth" in text and " s" in text                  # the updating elapsed-time line
    assert "einloom synth: pnr      cached\n" in text
    log = io.StringIO()
    plain = Spinner(log)
    plain("pnr", "start")
    plain("pnr", "stalled")
    assert log.getvalue().endswith("einloom synth: pnr      router2 stopped converging after 0.0 s; trying router1\n")
    log.seek(0)
    log.truncate()
    plain("pnr", "start")
    plain("pnr", "done")
    assert log.getvalue().startswith("einloom synth: pnr      running ...\neinloom synth: pnr      done in ")
    assert "\r" not in log.getvalue()


def test_unknown_router_is_a_tool_error(tmp_path):
    with pytest.raises(ToolError, match=r"--router: unknown nextpnr router 'router9'.*auto, router2, router1"):
        synthesize(MAC8, "mac8", "ecp5", cache_dir=tmp_path, router="router9")


def test_capacity_failures_are_recognized_in_tool_logs():
    from einloom.rtl.fpga.tools import first_error, is_capacity_failure
    log = "Info: Packing...\nERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'MULT18X18D'\n"
    assert first_error(log).startswith("Unable to place cell 'x'") and is_capacity_failure(log)
    assert not is_capacity_failure("ERROR: syntax error, unexpected TOK_ID\n")


# --- router2 stall detection and the auto router -------------------------------------------------

def _router2_log(overuse: list[int]) -> str:
    lines = ["Info: Running router2...", "Info: Setting up routing resources..."]
    lines += [f"Info:     iter={i} wires={270000 + 1000 * i} overused={u - 30} overuse={u} archfail=NA"
              for i, u in enumerate(overuse, start=1)]
    return "\n".join(lines) + "\n"


#: overuse per iteration of the pipelined 4x4 int8 core's router2 run (45k, seed 1), which diverged
DIVERGING = [26651, 15402, 10443, 7449, 6026, 5003, 4187, 3854, 3632, 3553, 3263, 3220, 3250, 3194, 3210,
             3202, 3174, 3292, 3323, 3557, 3689, 4066, 4241, 4483, 4632, 4951, 5621]
#: the bf16 core's router2 run (85k, seed 1), which converged at iteration 61 after plateaus
CONVERGING = [71420, 37268, 23782, 15592, 11114, 8190, 6304, 4904, 3701, 2766, 2109, 1557, 1229, 908, 758,
              626, 502, 410, 337, 309, 264, 227, 190, 163, 143, 122, 103, 75, 69, 55, 53, 47, 43, 44, 40, 35,
              27, 27, 24, 25, 19, 17, 16, 12, 9, 8, 8, 4, 5, 4, 5, 6, 6, 3, 3, 2, 2, 2, 2, 2, 0]


#: the pipelined 8x8 int8 core's router2 run (85k, seed 1): 12 iterations without a new minimum at
#: the end (1 at iteration 76, then 1, 2, 3) before it converged at iteration 89
CONVERGING_8X8 = [53647, 30604, 18405, 12258, 8567, 5976, 4470, 3455, 2734, 2044, 1863, 1548, 1393, 1076, 960,
                  833, 626, 520, 420, 322, 252, 223, 195, 172, 156, 124, 96, 89, 88, 69, 69, 73, 70, 60, 55,
                  58, 53, 52, 52, 51, 37, 32, 29, 34, 25, 18, 23, 22, 21, 17, 16, 14, 11, 10, 12, 11, 12, 12,
                  13, 15, 10, 14, 11, 9, 7, 8, 7, 5, 6, 3, 3, 4, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                  3, 0]


def test_router2_stall_detection():
    from einloom.rtl.fpga.tools import ROUTER2_DIVERGING, ROUTER2_PLATEAU, router2_stall
    assert (ROUTER2_DIVERGING, ROUTER2_PLATEAU) == (10, 40)
    for run in (CONVERGING, CONVERGING_8X8):
        for n in range(1, len(run) + 1):
            assert router2_stall(_router2_log(run[:n])) is None, n
    for n in range(1, 27):                       # best 3174 at iteration 17: 9 iterations later, not yet
        assert router2_stall(_router2_log(DIVERGING[:n])) is None, n
    reason = router2_stall(_router2_log(DIVERGING))
    assert reason == "router2 stopped converging: overuse 3174 at iteration 17, 5621 at iteration 27"
    # a plateau: 39 iterations without a new minimum are tolerated, 40 are not
    plateau = [500, 100] + [101] * 39
    assert router2_stall(_router2_log(plateau)) is None
    assert router2_stall(_router2_log(plateau + [100])) == ("router2 stopped converging: overuse 100 at "
                                                           "iteration 2, 100 at iteration 42")
    assert router2_stall("Info: Running router2...\n") is None and router2_stall("") is None


def test_run_tool_watch_stops_the_tool(tmp_path):
    from einloom.rtl.fpga.tools import StalledError, run_tool
    calls = []

    def watch(log):
        calls.append(log)
        return "stopped by the test"

    with pytest.raises(StalledError, match=r"yosys stopped: stopped by the test \(log: .*tool.log\)") as err:
        run_tool("yosys", ["-p", "help; help; help"], tmp_path, "tool.log", watch=watch, poll_s=0.01)
    assert calls and "router1" in err.value.hint


@pytest.mark.slow
def test_auto_router_falls_back_to_router1_and_caches_the_stall(tmp_path, monkeypatch):
    import einloom.rtl.fpga.flow as flow
    watched = []

    def always_stalled(log):
        watched.append(len(log))
        return "router2 stopped converging (test)"

    monkeypatch.setattr(flow, "router2_stall", always_stalled)
    monkeypatch.setattr(flow, "PNR_POLL_S", 0.01)
    result = synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path)
    assert watched, "router2 was never watched"
    assert result.pnr["router"] == "router1" and result.fmax_mhz is not None
    assert "router2 stopped converging (test)" in result.pnr["router2_stalled"]
    assert any(n.endswith("; routed with router1") for n in result.notes)
    assert "(hint:" not in result.pnr["router2_stalled"]
    watched.clear()
    again = synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path)
    assert not watched and again.cache_hit and again.fmax_mhz == result.fmax_mhz     # stall cached
    assert str(tmp_path) in result.pnr["router2_stalled"] and ".work-" not in result.pnr["router2_stalled"]
    forced = synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path, router="router2")
    assert not watched and forced.pnr["router"] == "router2"      # a named router is not watched


NEXTPNR_LOG = """\
Info: Critical path report for clock '$glbnet$clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source core.recip.e0_TRELLIS_FF_Q_11.Q
Info:    routing  3.63  4.15 Net core.recip.e0[10] (43,6) -> (74,22)
Info:                          Sink core.recip.$4_MULT18X18D_P9.B10
Info:      logic  3.93  8.08 Source core.recip.$4_MULT18X18D_P9.P17
Info:    routing  1.28  9.36 Net core.recip.$4[17] (74,22) -> (43,23)
Info:                          Sink core.recip.c0_TRELLIS_FF_Q_17.DI
Info: 4.45 ns logic, 4.91 ns routing

Info: Critical path report for cross-domain path '<async>' -> 'posedge $glbnet$clk':
Info:   clk-to-q  0.00  0.00 Source shift_in_TRELLIS_FF_Q_287.M
Info: 0.00 ns logic, 1.60 ns routing
"""


def test_critical_path_summary_reads_the_clock_path():
    from einloom.rtl.fpga.flow import critical_path_summary
    early = NEXTPNR_LOG.replace("4.45 ns logic, 4.91", "1.00 ns logic, 1.00").replace("recip", "early")
    path = critical_path_summary(early + "\nInfo: Routing complete.\n" + NEXTPNR_LOG)   # the last report wins
    assert path == {"ns": 9.36, "logic_ns": 4.45, "routing_ns": 4.91,
                    "from": "core.recip.e0_TRELLIS_FF_Q_11.Q", "to": "core.recip.c0_TRELLIS_FF_Q_17.DI"}
    assert critical_path_summary("Info: Program finished normally.\n") is None


def test_automatic_part_for_pnr_leaves_lut_headroom(tmp_path, monkeypatch):
    """A design that fits a part by its cells but fills its LUT sites past ROUTABLE_LUT_FRACTION is
    placed and routed on the next larger part (the 2x2 int8 sigmoid lane core at 97 % of the 45F's LUT
    sites failed to route); synthesis-only and a named part keep the smallest / named part."""
    import einloom.rtl.fpga.flow as flow
    routed = []
    monkeypatch.setattr(flow, "ROUTABLE_LUT_FRACTION", 1e-6)      # MAC8 fills "too much" of every part
    monkeypatch.setattr(flow._Flow, "pnr", lambda self, part, router="auto": routed.append(part.name) or
                        {"fmax_mhz": 123.0})
    moved = synthesize(MAC8, "mac8", "ecp5", cache_dir=tmp_path)
    assert routed == ["85k"] and moved.part == "85k" and moved.part_selection == "smallest routable"
    assert any("25k's LUT sites" in n and "placed and routed on 45k" in n for n in moved.notes), moved.notes
    assert any("no larger ecp5 part" in n for n in moved.notes), moved.notes
    assert synthesize(MAC8, "mac8", "ecp5", cache_dir=tmp_path, pnr=False).part == "25k"
    assert synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path).part == "25k"
    monkeypatch.setattr(flow, "ROUTABLE_LUT_FRACTION", 0.85)
    assert synthesize(MAC8, "mac8", "ecp5", cache_dir=tmp_path).part == "25k"


def test_seed_lists_parse_and_bad_ones_are_one_line_errors(tmp_path, capsys):
    from einloom.rtl.fpga.seeds import MAX_SEEDS, parse_seeds
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("3, 1,7-8") == [3, 1, 7, 8]
    for bad in ("", "x", "1-", "5-2", "-1", "1,1", "2-4,3", f"0-{MAX_SEEDS}"):
        with pytest.raises(ToolError) as error:
            parse_seeds(bad)
        assert error.value.location.field == "--seeds"
    source = tmp_path / "mac8.v"
    source.write_text(MAC8)
    from einloom import cli
    base = ["synth", "--verilog", str(source), "--top", "mac8", "--cache-dir", str(tmp_path / "c")]
    for argv, flag in ((["--target", "ecp5", "--seeds", "1,x"], "--seeds"),
                       (["--target", "ecp5", "--seeds", "1-2", "--seed", "3"], "--seeds"),
                       (["--target", "xilinx", "--seeds", "1-2"], "--seeds"),
                       (["--target", "ecp5", "--seeds", "1-2", "--no-pnr"], "--seeds"),
                       (["--target", "ecp5", "--seeds", "1-2", "--jobs", "0"], "--jobs")):
        assert cli.main(base + argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and flag in err and "Traceback" not in err, err


@pytest.mark.slow
def test_seed_sweep_routes_every_seed_and_reports_the_best(tmp_path, capsys):
    from einloom import cli
    from einloom.rtl.fpga.seeds import sweep_seeds
    sweep = sweep_seeds(MAC8, "mac8", "ecp5", [1, 2, 3], jobs=2, part="25k", cache_dir=tmp_path)
    assert [r.pnr["seed"] for r in sweep.runs] == [1, 2, 3]
    assert sweep.runs[0].cached == {"synth": False, "pnr": False}
    assert all(r.cached == {"synth": True, "pnr": False} for r in sweep.runs[1:])   # synthesized once
    fmax = [r.fmax_mhz for r in sweep.runs]
    assert sweep.best.fmax_mhz == max(fmax) and sweep.summary()["fmax_mhz"]["min"] == min(fmax)
    # each seed is its own run: the same as a single-seed synthesize (from the cache)
    assert synthesize(MAC8, "mac8", "ecp5", part="25k", cache_dir=tmp_path, seed=2).fmax_mhz == fmax[1]
    source = tmp_path / "mac8.v"
    source.write_text(MAC8)
    argv = ["synth", "--verilog", str(source), "--top", "mac8", "--target", "ecp5", "--part", "25k",
            "--cache-dir", str(tmp_path), "--seeds", "1-3", "--json"]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fmax_mhz"] == max(fmax) and data["pnr"]["seed"] == data["seed_sweep"]["best_seed"]
    assert [s["fmax_mhz"] for s in data["seed_sweep"]["seeds"]] == fmax
    assert cli.main(argv[:-1]) == 0
    out = capsys.readouterr().out
    assert "place and route per seed" in out and f"max {max(fmax):.2f} MHz" in out

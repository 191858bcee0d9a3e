"""A per-key scan on the lanes (rtl/lanes/scan.py): aaren (attention as an RNN) on the lane core.

The lanes are the states' rank (F), each lane runs the whole scan over the keys (``RM``, ``RU``
replicated per lane, ``RW[f]`` its own), the 2D array computes the key's score ``S[m]`` with the
one learned query ``QL`` broadcast to every column, ``V[f, m]`` reaches the lanes as a direct slot,
and every key emits ``O[f, m]``.  Bit-exact against ``run_in_format`` of the cascade (bf16, int8),
cycles equal to ``lane_core_cycles``; a renamed copy builds the same program."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from einloom.cost_models import load_arch
from einloom.einsum import load_cascade
from einloom.einsum.errors import SpecError
from einloom.einsum.loader import parse_cascade_text
from einloom.rtl.lane_build import plan_stages, run_cycles, core_shape
from einloom.rtl.lanes.scan import scan_ranks

ROOT = Path(__file__).resolve().parents[2]
BF16 = ROOT / "examples/archs/rtl-4x4-bf16.yaml"
INT8 = ROOT / "examples/archs/rtl-4x4-int8.yaml"
AAREN = ROOT / "einsum/library/aaren.yaml"

# every tensor, rank, param and Einsum of aaren renamed (the structure must come from the ranks and
# dependences, not from names)
RENAMES = [("QL", "QRY"), ("RM", "MX"), ("PRM", "RESC"), ("SN", "WT"), ("RU", "DEN"), ("RW", "NUM"),
           ("scale", "alpha"), ("S", "LOGIT"), ("K", "KEY"), ("V", "VAL"), ("O", "OUT"),
           ("M", "T"), ("E", "D"), ("F", "C"), ("m", "t"), ("e", "d"), ("f", "c")]


def renamed_aaren() -> str:
    text = AAREN.read_text()
    body = text[text.index("sequence_rank"):]
    marks = {}
    for k, (old, new) in enumerate(RENAMES):
        mark = f"@{k}@"
        body = re.sub(rf"(?<![A-Za-z_@]){old}(?![A-Za-z_@])", mark, body)
        marks[mark] = new
    for mark, new in marks.items():
        body = body.replace(mark, new)
    return "name: rnn-attention\n" + body.replace("reference:", "unused_reference:").split("unused_reference:")[0]


def test_aaren_is_a_scan_over_its_key_rank_with_the_value_rank_on_the_lanes():
    assert scan_ranks(load_cascade("aaren")) == ("M", "F")
    assert scan_ranks(parse_cascade_text(renamed_aaren())) == ("T", "C")
    for other in ("linear-causal", "fusemax-1pass", "linear", "split-kv-decode"):
        assert scan_ranks(load_cascade(other)) is None


def test_the_lane_program_carries_the_states_through_the_score_section():
    from einloom.rtl.lanes.units import schedule_latency
    (plan,) = plan_stages(load_cascade("aaren"), load_arch(str(BF16)), {"M": 8, "E": 8, "F": 8})
    prog = plan.program
    assert prog.outputs == {"O": "key"} and prog.chains == () and prog.lane_rank == "F"
    code = prog.section("score").instrs
    ops = [(i.op, i.dst.name if i.dst else None) for i in code]
    assert ("max", "RM'") in ops and ("out", None) in ops
    for state in ("RM", "RU", "RW"):      # the copy new -> current right after the old iterate's last read
        k = ops.index(("mov", state))
        assert code[k].srcs[0].reg.name == state + "'"
        assert not any(state in [r.name for r in i.reads()] for i in code[k + 1:])
        assert any(state in [r.name for r in i.reads()] for i in code[:k])
    # the loop-carried chains (RU: mul -> add -> copy) bound the initiation interval, not the output's div
    lat = schedule_latency(False)
    ii = prog.section("score").schedule(lat).ii
    assert lat["mul"] + lat["add"] + lat["select"] <= ii < lat["mul"] + lat["add"] + lat["select"] + lat["div"]


@pytest.mark.parametrize("arch,M", [(BF16, 8), (INT8, 10)], ids=["bf16", "int8"])
def test_the_executor_is_bit_exact_with_the_golden_model(arch, M):
    from einloom.rtl.lane_build import random_inputs
    from einloom.rtl.lanes.execute import against_interpreter
    (plan,) = plan_stages(load_cascade("aaren"), load_arch(str(arch)), {"M": M, "E": 8, "F": 8})
    inputs = random_inputs(plan, 5)
    run, ref = against_interpreter(plan.program, plan.cascade, plan.schedule, plan.arith, inputs)
    assert run.codes["O"].shape == (8, M) and run.valid["O"].all()
    assert np.array_equal(np.asarray(run.codes["O"]), np.asarray(ref.codes["O"]))
    assert len(np.unique(np.asarray(ref.codes["O"]))) > M      # not a degenerate output


@pytest.mark.parametrize("arch,M,backpressure", [(BF16, 8, 0.0), (INT8, 10, 0.0), (BF16, 10, 0.3)],
                         ids=["bf16", "int8-ragged", "bf16-backpressure"])
def test_aaren_on_the_lane_core_is_bit_and_cycle_exact(arch, M, backpressure):
    from einloom.rtl.tb.lane_core_tb import simulate_stages
    a = load_arch(str(arch))
    runs, problems = simulate_stages("aaren", a, {"M": M, "E": 8, "F": 8}, backpressure=backpressure)
    (run,) = runs
    assert problems == []
    assert int(run["data"].valid["O"].sum()) == 8 * M                       # every O[f, m] compared
    assert run["data"].golden["O"].shape == (M, 8)
    model = run["model"]
    assert run["result"]["busy_2d"] == model["mac_cycles"] == run["data"].tiles * 2 * 8   # 2 blocks x E
    if backpressure == 0:
        assert run["result"]["cycles"] == model["compute_cycles"]
        assert model["compute_cycles"] == run_cycles([run["plan"]], core_shape(a, [run["plan"]]))["compute_cycles"]
    else:
        assert run["result"]["cycles"] >= model["compute_cycles"]


def test_a_renamed_copy_builds_the_same_core():
    from einloom.rtl.tb.lane_core_tb import simulate_stages
    a = load_arch(str(BF16))
    mine = parse_cascade_text(renamed_aaren())
    (p1,) = plan_stages(load_cascade("aaren"), a, {"M": 8, "E": 8, "F": 8})
    (p2,) = plan_stages(mine, a, {"T": 8, "D": 8, "C": 8})
    ops = lambda p: [(s, [i.op for i in p.program.section(s).instrs]) for s in p.program.section_names()]  # noqa: E731
    assert ops(p1) == ops(p2)
    assert run_cycles([p1], core_shape(a, [p1])) == run_cycles([p2], core_shape(a, [p2]))
    runs, problems = simulate_stages(mine, a, {"T": 8, "D": 8, "C": 8})
    assert problems == [] and int(runs[0]["data"].valid["OUT"].sum()) == 64
    assert runs[0]["result"]["cycles"] == runs[0]["model"]["compute_cycles"] == 675


from lane_specs import AAREN_WITH_QUERIES as WITH_QUERIES  # noqa: E402


def test_a_scan_over_two_lane_ranks_is_still_refused_naming_the_einsum(tmp_path, capsys):
    from einloom.cli import main
    with pytest.raises(SpecError) as exc:
        plan_stages(parse_cascade_text(WITH_QUERIES), load_arch(str(BF16)), {"M": 8, "E": 4, "F": 4, "P": 2})
    assert "Einsum RM" in str(exc.value) and "running sum" in str(exc.value)
    spec = tmp_path / "aaren-with-queries.yaml"
    spec.write_text(WITH_QUERIES)
    rc = main(["rtl", str(spec), "--arch", str(BF16), "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "RM" in err and "iterates over the key rank M itself" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_einloom_rtl_builds_aaren(tmp_path, capsys):
    import json
    from einloom.cli import main
    rc = main(["rtl", "aaren", "--arch", str(INT8), "--ranks", "M=8,E=8,F=8", "-o", str(tmp_path / "b"), "--json"])
    man = json.loads(capsys.readouterr().out)
    assert rc == 0 and man["kind"] == "lane-core"
    (prog,) = man["programs"]
    assert prog["cascade"] == "aaren" and prog["query_rank"] == "F" and prog["value_products"] == []
    assert prog["outputs"] == ["O"] and prog["expected"][0]["P"] == 8 and prog["expected"][0]["M"] == 8
    assert [m["name"] for m in man["memories"]] == ["q0", "k0", "x1", "v0"]     # v0: an unused slot

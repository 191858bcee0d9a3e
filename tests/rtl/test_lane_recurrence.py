"""Per-key recurrences on the lane core (rtl/lanes/recurrence.py, rtl/lane_state.py): causal linear
attention's state KV[m+1, e, f] = KV[m, e, f] + FK[e, m] * V[f, m], read by the query at its own key,
kept in the 2D array's state registers and updated along each row in the column chain's cycle.  Bit-exact
against run_in_format of the original cascade (the per-key loop), bf16 and int8; cycles and 2D busy
equal to sim/rtl_core.lane_core_cycles; what the state chain cannot run is refused naming the Einsum."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from einloom.cost_models import load_arch
from einloom.einsum import load_cascade
from einloom.einsum.errors import SpecError
from einloom.einsum.loader import parse_cascade_text
from einloom.rtl.lane_build import core_shape, plan_stages
from einloom.rtl.lanes.recurrence import per_key_recurrence

ROOT = Path(__file__).resolve().parents[2]
BF16 = ROOT / "examples/archs/rtl-4x4-bf16.yaml"
INT8 = ROOT / "examples/archs/rtl-4x4-int8.yaml"


def test_linear_causal_is_a_per_key_recurrence_read_over_the_feature_rank():
    rec = per_key_recurrence(load_cascade("linear-causal"))
    assert [(c.state, c.reader, c.weight, c.operand, c.update) for c in rec.chains] == [
        ("KV", "NUM", "FK", "V", "UFK"), ("Z", "DEN", "FK", None, "UFK")]
    sur = rec.cascade
    assert sur.sequence_rank == "E" and set(sur.inputs) == {"Q", "K", "KV", "Z"} and sur.outputs == ("AV",)
    assert sur.tensors["KV"].ranks == ("E", "F") and sur.tensors["KV"].iterative_rank is None
    (plan,) = plan_stages(load_cascade("linear-causal"), load_arch(str(BF16)), {"M": 8, "E": 8, "F": 8})
    st = plan.program.structure
    assert (st.key, st.lane, st.value) == ("E", "M", "F") and st.direct == {"Q", "K"}
    assert [c.einsum for c in plan.program.chains] == ["NUM", "DEN", "UFK"]
    shape = core_shape(load_arch(str(BF16)), [plan])
    assert shape.states == ((2, True), (2, False), None) and shape.state_tiles == 2
    assert [m[0] for m in shape.memories()] == ["x0", "x1", "v0", "v1", "v2", "u0"]
    # cascades whose states iterate over a tile rank (M1) are the lane program's, not per key
    assert per_key_recurrence(load_cascade("fusemax-1pass")) is None
    assert per_key_recurrence(load_cascade("linear")) is None


@pytest.mark.parametrize("arch,M", [(BF16, 8), (BF16, 11), (INT8, 11)], ids=["bf16-M8", "bf16-M11", "int8-M11"])
def test_linear_causal_on_the_lane_core_bit_and_cycle_exact(arch, M):
    from einloom.rtl.tb.lane_core_tb import check, simulate_stages
    runs, problems = simulate_stages("linear-causal", load_arch(str(arch)), {"M": M, "E": 8, "F": 8})
    assert problems == []
    (run,) = runs
    assert run["plan"].recurrence is not None and (run["plan"].fixed is not None) == (arch == INT8)
    assert run["result"]["cycles"] == run["model"]["compute_cycles"]
    assert run["result"]["busy_2d"] == run["model"]["mac_cycles"]
    data = run["data"]
    assert int(data.valid["AV"].sum()) == 8 * M and data.num_queries == M and data.num_keys == 8
    # every query's output depends on its own prefix: the golden outputs differ from query to query
    assert len({tuple(data.golden["AV"][:, q]) for q in range(M)}) == M
    # a wrong bit in one output is caught
    shape = core_shape(load_arch(str(arch)), [run["plan"]])
    blk, tag, f, vals, lv = run["result"]["beats"][-1]
    run["result"]["beats"][-1] = (blk, tag, f, [vals[0] ^ 1] + vals[1:], lv)
    assert len(check(run["result"], shape, data, ["AV"])) == 1


def test_the_golden_model_is_the_per_key_loop_not_a_chunked_sum():
    """The state's bits depend on the per-key order: summing each tile of keys first (a chunked form)
    gives other bf16 codes, so the core must update the state key by key."""
    from einloom.rtl.tb.lane_core_tb import whole_inputs
    from einloom.sim.formats.interpret import run_in_format
    arch = load_arch(str(BF16))
    (plan,) = plan_stages(load_cascade("linear-causal"), arch, {"M": 12, "E": 8, "F": 8})
    inputs = whole_inputs(load_cascade("linear-causal"), [plan], 5)
    ref = run_in_format(load_cascade("linear-causal"), plan.arith, inputs, keep_intermediates=True)
    kv = ref.intermediates["KV"]                 # [M+1, E, F] fp32 bits, the per-key chain
    a = plan.arith
    fk, v = ref.intermediates["FK"], a.from_input(inputs["V"])
    chunked = a.fill(kv.shape[1:], 0.0)
    for t in range(3):                           # tiles of 4 keys: sum the tile, then add it to the state
        part = a.fill(kv.shape[1:], 0.0)
        for m in range(4 * t, 4 * t + 4):
            part = a.add(part, a.mul(fk[:, m][:, None], v[:, m][None, :]))
        chunked = a.add(chunked, part)
    assert not np.array_equal(chunked, kv[12])


AAREN_LIKE = """
name: state-outside-a-product
sequence_rank: M
ranks: {M: 8, E: 4, F: 4}
tensors: {K: [E, M], V: [F, M], O: [F, M]}
inputs: [K, V]
outputs: [O]
init:
  KV[0, e, f]: 0
einsums:
  - FK[e, m]      = exp(K[e, m])
  - KV[m+1, e, f] = KV[m, e, f] + FK[e, m] * V[f, m]
  - O[f, m]       = sum[e] exp(KV[m+1, e, f])
"""

EXCLUSIVE = AAREN_LIKE.replace("sum[e] exp(KV[m+1, e, f])", "FK[e, m] * KV[m, e, f]")
NONZERO = AAREN_LIKE.replace("KV[0, e, f]: 0", "KV[0, e, f]: 1").replace(
    "sum[e] exp(KV[m+1, e, f])", "FK[e, m] * KV[m+1, e, f]")


from lane_specs import AAREN_WITH_QUERIES as AAREN_PER_QUERY  # noqa: E402  (aaren with a query rank)


@pytest.mark.parametrize("text,words", [
    (AAREN_PER_QUERY, ["Einsum RM", "iterates over the key rank M itself", "max(RM[m, p], S[m, p])",
                       "running sum"]),
    (AAREN_LIKE, ["Einsum O", "reads the per-key state KV other than in one product"]),
    (EXCLUSIVE, ["Einsum O", "at the state after its own key (KV[m+1, ...])"]),
    (NONZERO, ["Einsum KV", "starts from a value other than 0"]),
])
def test_what_the_state_chain_cannot_run_is_refused_naming_the_einsum(text, words):
    cascade = parse_cascade_text(text)
    with pytest.raises(SpecError) as exc:
        plan_stages(cascade, load_arch(str(BF16)), {"M": 8, "E": 8, "F": 8, "P": 2})
    for w in words:
        assert w in str(exc.value)


def test_einloom_rtl_builds_linear_causal_with_state_chains(tmp_path, capsys):
    from einloom.cli import main
    rc = main(["rtl", "linear-causal", "--arch", str(BF16), "--ranks", "M=8,E=8,F=8", "-o", str(tmp_path / "b"),
               "--json"])
    man = json.loads(capsys.readouterr().out)
    assert rc == 0 and man["kind"] == "lane-core"
    (prog,) = man["programs"]
    assert prog["cascade"] == "linear-causal.recurrence" and prog["value_products"] == ["NUM", "DEN", "UFK"]
    assert prog["expected"][0]["P"] == 8 and prog["expected"][0]["M"] == 8
    assert [m["name"] for m in man["memories"]] == ["x0", "x1", "v0", "v1", "v2", "u0"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", [BF16, INT8], ids=["bf16", "int8"])
def test_einloom_verify_linear_causal_in_verilator(arch, capsys):
    from einloom.cli import main
    rc = main(["verify", "linear-causal", "--arch", str(arch), "--ranks", "M=12,E=8,F=8", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"]
    plain = out["jobs"][0]
    assert plain["problems"] == [] and plain["cycles"] == plain["expected_cycles"]
    assert plain["outputs_checked"] == 8 * 12


def test_a_build_with_state_chains_runs_one_program(capsys):
    from einloom.cli import main
    rc = main(["rtl", "linear-causal", "--also", "alibi", "--arch", str(BF16), "--ranks", "P=8,M=8,E=8,F=8",
               "-o", "/tmp/einloom-refused"])
    err = capsys.readouterr().err
    assert rc == 2 and "keeps per-key states in the 2D array" in err and "alibi" in err
    assert "Traceback" not in err


RENAMED = """
name: my-causal
sequence_rank: T
ranks: {T: 6, D: 4, H: 4}
tensors: {A: [D, T], B: [D, T], W: [H, T], Y: [H, T]}
inputs: [A, B, W]
outputs: [Y]
init:
  S[0, d, h]: 0
  G[0, d]: 0
einsums:
  - PA[d, t]      = where(A[d, t] > 0, A[d, t] + 1, exp(A[d, t]))
  - PB[d, t]      = where(B[d, t] > 0, B[d, t] + 1, exp(B[d, t]))
  - S[t+1, d, h]  = S[t, d, h] + PB[d, t] * W[h, t]
  - G[t+1, d]     = G[t, d] + PB[d, t]
  - NU[h, t]      = PA[d, t] * S[t+1, d, h]
  - DE[t]         = PA[d, t] * G[t+1, d]
  - Y[h, t]       = NU[h, t] / DE[t]
"""


def test_a_users_per_key_recurrence_with_its_own_names_runs_bit_and_cycle_exact():
    from einloom.rtl.tb.lane_core_tb import simulate_stages
    cascade = parse_cascade_text(RENAMED)
    rec = per_key_recurrence(cascade)
    assert [(c.state, c.reader, c.weight, c.operand) for c in rec.chains] == [
        ("S", "NU", "PB", "W"), ("G", "DE", "PB", None)]
    (run,), problems = simulate_stages(cascade, load_arch(str(BF16)), {"T": 6, "D": 4, "H": 4})
    assert problems == [] and run["result"]["cycles"] == run["model"]["compute_cycles"]
    assert int(run["data"].valid["Y"].sum()) == 4 * 6

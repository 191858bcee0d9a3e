"""Cascade specs the lane-core tests share."""

# aaren with a query rank: its states have two ranks besides the key (F, P), so it is no scan the lanes
# run (rtl/lanes/scan.py: aaren itself builds there), and the per-key state chain refuses its running max
AAREN_WITH_QUERIES = """
name: aaren-per-query
sequence_rank: M
ranks: {M: 8, E: 4, F: 4, P: 2}
params: {scale: 1 / sqrt(E)}
tensors: {Q: [E, P], K: [E, M], V: [F, M], O: [F, M, P]}
inputs: [Q, K, V]
outputs: [O]
init:
  RM[0, p]: -inf
  RU[0, p]: 0
  RW[0, f, p]: 0
einsums:
  - S[m, p]       = scale * Q[e, p] * K[e, m]
  - RM[m+1, p]    = max(RM[m, p], S[m, p])
  - PRM[m, p]     = exp(RM[m, p] - RM[m+1, p])
  - SN[m, p]      = exp(S[m, p] - RM[m+1, p])
  - RU[m+1, p]    = RU[m, p] * PRM[m, p] + SN[m, p]
  - RW[m+1, f, p] = RW[m, f, p] * PRM[m, p] + SN[m, p] * V[f, m]
  - O[f, m, p]    = RW[m+1, f, p] / RU[m+1, p]
"""

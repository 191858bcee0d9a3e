"""Design-space exploration: sweeps over architecture parameters x variants x workloads.

A sweep file (:mod:`einloom.sweep.spec`) names a base architecture, the parameters to vary (any field
of the architecture file, by dotted path), how to sample them (grid, random, Latin hypercube), the
variants (cascades) and workloads, the mapping of each point (a baseline or a bounded search) and
constraints that prune points before evaluation.  :mod:`einloom.sweep.space` turns it into points,
:mod:`einloom.sweep.point` evaluates one point (the only module that calls the mapper),
:mod:`einloom.sweep.store` keeps results in SQLite under a content hash so a sweep resumes where it
stopped, :mod:`einloom.sweep.executors` runs points on local processes or Dask, and
:mod:`einloom.sweep.runner` ties them together.  Reports: :mod:`einloom.report.sweep`.
"""

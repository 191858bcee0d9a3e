"""cocotb testbenches for the generated RTL and the Verilator runner that builds and runs them.

The testbench modules (``attention_tb``, ``units_tb``) are imported by cocotb inside the simulator; the
pytest entry points in tests/rtl and ``einloom verify`` drive them through :mod:`einloom.rtl.tb.runner`.
"""

"""Floating-point arithmetic units (einloom.rtl.float): bf16 storage, fp32 arithmetic.

Each unit is a pipelined ``wiring.Component`` with a ``latency`` property (cycles from an input to its
result, one result per cycle; ``latency=0`` makes it combinational) and is the bit-exact twin of a
function of the golden model ``einloom.sim.formats.bf16``:

===================  ========================  ======================================================
unit                 golden model              default latency (max)
===================  ========================  ======================================================
``Bf16ToFp32``       ``bf16_to_fp32``          1
``Fp32ToBf16``       ``fp32_to_bf16``          1
``Bf16Mul``          ``bf16_mul``              2
``Fp32Mul``          ``fp32_mul``              3
``Fp32Add``          ``fp32_add``/``sub``      4
``Fp32Max``          ``fp32_max``              1
``Fp32Exp``          ``fp32_exp``              8
``Fp32Recip``        ``fp32_recip``            6
``Fp32Accumulator``  ``fp32_sum_interleaved``  4 (L = 1..4: an ``Fp32Add`` of latency L looping back)
===================  ========================  ======================================================

``einloom.rtl.float.bf16`` plugs them into the attention datapath as the ``bf16`` number format.
"""
from einloom.rtl.float.accumulate import Fp32Accumulator, Fp32PartialSum
from einloom.rtl.float.add import Fp32Add
from einloom.rtl.float.compare import Fp32Max
from einloom.rtl.float.convert import Bf16ToFp32, Fp32ToBf16
from einloom.rtl.float.exp import Fp32Exp
from einloom.rtl.float.mul import Bf16Mul, Fp32Mul
from einloom.rtl.float.recip import Fp32Recip

__all__ = ["Fp32Accumulator", "Fp32PartialSum", "Bf16ToFp32", "Fp32ToBf16", "Bf16Mul", "Fp32Mul", "Fp32Add", "Fp32Max", "Fp32Exp", "Fp32Recip"]

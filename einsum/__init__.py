"""einloom.einsum: the extended-Einsum cascade language (parse, validate, analyse, interpret).

Public API::

    from einloom.einsum import load_cascade, parse_cascade_text, run_cascade, analyse, CascadeBuilder
"""
from einloom.einsum.cascade import Cascade, Einsum, InitValue, Partition, TensorDecl
from einloom.einsum.errors import EinloomError, Location, SpecError
from einloom.einsum.interpret import RunResult, random_inputs, run_cascade
from einloom.einsum.loader import cascade_from_dict, library_names, load_cascade, parse_cascade_text
from einloom.einsum.operators import register_operator, register_reduction

__all__ = [
    "Cascade", "Einsum", "InitValue", "Partition", "TensorDecl", "EinloomError", "Location", "SpecError",
    "RunResult", "random_inputs", "run_cascade", "cascade_from_dict", "library_names", "load_cascade",
    "parse_cascade_text", "register_operator", "register_reduction", "analyse", "CascadeBuilder",
]


def __getattr__(name):  # lazy: analysis pulls in networkx-heavy code only when used
    if name == "analyse":
        from einloom.einsum.analysis import analyse
        return analyse
    if name == "CascadeBuilder":
        from einloom.einsum.builder import CascadeBuilder
        return CascadeBuilder
    raise AttributeError(name)

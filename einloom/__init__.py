"""einloom: attention algorithms as extended-Einsum cascades, from spec to verified RTL."""
__version__ = "0.1.0"

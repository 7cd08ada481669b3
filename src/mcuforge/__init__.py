"""mcuforge: deep-learning models on microcontrollers.

Data flows one way: a model file or spec becomes an IR graph (`frontends`, `models`), which is
analysed (`analysis`), planned (`planner`, `patch`), run (`runtime`) and lowered to C (`codegen`),
and reported (`report`). The packages' import order, bottom to top, is `mcuforge.layers`; the map
of the code is docs/architecture.md.
"""

__version__ = "0.1.0"

# Register every op kind (the IR learns each kind's attributes and shape rule from the op modules).
from . import ops as _ops  # noqa: E402,F401


def __getattr__(name: str):
    """``mcuforge.from_torch`` (see `mcuforge.quant.torch_import.from_torch`), loaded on first use so
    that ``import mcuforge`` does not import torch."""
    if name == "from_torch":
        import importlib
        return importlib.import_module("mcuforge.quant.torch_import").from_torch
    raise AttributeError(f"module 'mcuforge' has no attribute {name!r}")

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
    """``mcuforge.from_torch`` (see `mcuforge.quant.torch_import.from_torch`) and
    ``mcuforge.from_onnx`` (`mcuforge.quant.onnx_ptq.from_onnx`), loaded on first use so that
    ``import mcuforge`` imports neither torch nor onnx."""
    import importlib
    if name == "from_torch":
        return importlib.import_module("mcuforge.quant.torch_import").from_torch
    if name == "from_onnx":
        return importlib.import_module("mcuforge.quant.onnx_ptq").from_onnx
    raise AttributeError(f"module 'mcuforge' has no attribute {name!r}")

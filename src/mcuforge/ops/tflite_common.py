""".tflite option helpers the op modules share: fused activations <-> clamp bounds, and the empty
options tables TFLite's converter writes for ops without options (all numbers from the `tflite`
package's generated schema, so they are TFLite's own)."""

from __future__ import annotations

import math
from typing import Any, Callable

from tflite.ActivationFunctionType import ActivationFunctionType

from ..errors import UnsupportedOpError
from ..ir.ops import INF, OpKind

# Fused activation function <-> clamp bounds in real units.
CLAMP_OF_ACTIVATION: dict[int, tuple[float, float]] = {
    ActivationFunctionType.NONE: (-INF, INF),
    ActivationFunctionType.RELU: (0.0, INF),
    ActivationFunctionType.RELU6: (0.0, 6.0),
    ActivationFunctionType.RELU_N1_TO_1: (-1.0, 1.0),
}
ACTIVATION_NAME: dict[int, str] = {
    value: name for name, value in vars(ActivationFunctionType).items() if not name.startswith("_")
}


def activation_of_clamp(clamp: tuple[float, float]) -> int | None:
    """The fused activation code for ``clamp`` bounds, or None when TFLite has no such activation."""
    for code, bounds in CLAMP_OF_ACTIVATION.items():
        if all(_same_bound(a, b) for a, b in zip(bounds, clamp)):
            return code
    return None


def _same_bound(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12)


def fused_activation(kind: OpKind, clamp: tuple[float, float], output_name: str) -> int:
    """The fused activation code of ``clamp``; raises `UnsupportedOpError` naming the op's output
    when TFLite has none."""
    code = activation_of_clamp(clamp)
    if code is None:
        raise UnsupportedOpError(f"cannot write {kind.value} writing {output_name}: clamp {clamp} "
                                 "is not a TFLite fused activation")
    return code


def empty_table(builder: Any, start: Callable[[Any], None], end: Callable[[Any], int]) -> int:
    """An options table without fields (``start``/``end``: its generated functions)."""
    start(builder)
    return end(builder)

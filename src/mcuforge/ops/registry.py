"""The op registry: one `OpDef` per implemented op kind, found by scanning this package.

An op module (``ops/<op>.py``) defines a subclass of `OpDef` and lists its instances in a module
global ``OP_DEFS``. `discover` imports every module of the package (pkgutil, so a new module needs no
edit anywhere) and registers each definition under its kinds; it also tells the IR each kind's
attributes type and shape rule (`ir.ops.register_kind`), which is how the IR knows a kind without
importing the ops. Everything else asks `op_def(kind)`:

- ``ir``: attributes type and output shape;
- ``analysis``: MACs, weights for the Flash count, the receptive window along an axis, and which
  overlap the op allows (the byte arithmetic of the overlap stays in `analysis.overlap`);
- ``runtime``: the int8 reference kernel (`OpDef.run`; `OpDef.run_stateful` for an op whose state
  carries from one invocation to the next);
- ``codegen``: the C lowering (`OpDef.lower`), a `LayerCall` of a kernel template;
- ``frontends``: the .tflite builtin code, options table, option decoding and encoding, the constant
  inputs the IR keeps as attributes;
- ``validation`` (`ops.validation.validate_model`, at import): the op's input count and input roles,
  and `OpDef.check_values`, the value checks only the op's kind defines.

Quantisation parameters that both the reference kernel and the C lowering need are computed once by
the op module's ``prepare`` function into a frozen dataclass (TFLite Micro's ``CalculateOpData*``
shape, which serves its reference and CMSIS-NN kernels alike).
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

import numpy as np
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import UnsupportedOpError
from ..ir.checks import check_requantisation
from ..ir.ops import Attrs, NoAttrs, Op, OpKind, Pads, register_kind
from ..ir.tensor import DType
from .lowering_types import LayerCall, LoweringTarget, unsupported

if TYPE_CHECKING:  # only for annotations: the IR graph type
    from ..ir.graph import Graph


class OverlapRule(enum.Enum):
    """Which of its inputs an op may write its output over (see `analysis.overlap`)."""

    NONE = "none"
    ALIAS = "alias"                          # the output is the input's bytes (RESHAPE)
    ELEMENTWISE = "elementwise"              # output element i depends on input element i only
    INPLACE_DEPTHWISE = "inplace_depthwise"  # channel by channel through a plane (or row ring)
    POINTWISE = "pointwise"                  # a 1x1 stride-1 conv, pixel by pixel


class OptionReader(Protocol):
    """What an op's option decoding may ask of the .tflite reader (`frontends.tflite`)."""

    source: str
    names: list[str]

    def shape(self, index: int) -> tuple[int, ...]:
        """The shape of tensor ``index``."""

    def clamp(self, rop: Any, where: str) -> tuple[float, float]:
        """The fused activation of ``rop`` as clamp bounds."""

    def positive(self, rop: Any, where: str, *fields: str) -> tuple[int, ...]:
        """Option ``fields`` of ``rop``, each at least 1."""

    def pads(self, rop: Any, where: str, in_hw: tuple[int, int], kernel: tuple[int, int],
             stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> Pads:
        """Explicit pads of the op's SAME/VALID padding option."""

    def spatial_input(self, rop: Any, where: str) -> tuple[int, ...]:
        """The 4-D shape of the op's first input."""

    def constant(self, rop: Any, position: int, what: str, where: str) -> np.ndarray:
        """The values of the constant int32 input ``position``."""

    def constant_or_none(self, rop: Any, position: int, what: str,
                         where: str) -> np.ndarray | None:
        """The values of the optional constant int32 input ``position`` (None when absent)."""


class OpDef:
    """Everything about one op kind (or a few kinds that share one implementation).

    Subclasses set ``kinds`` and ``attrs_type`` and override what differs from these defaults: the
    output shape equals the first input's, one input, no MACs, no weights, not patchable, no
    overlap, no options table, no folded constant inputs, no reference kernel and no C lowering."""

    kinds: tuple[OpKind, ...] = ()
    attrs_type: type = NoAttrs
    overlap: OverlapRule = OverlapRule.NONE
    tflite_options: int = BuiltinOptions.NONE
    # (generated options class, accessor names) the decoder reads; None: nothing to read.
    tflite_option_fields: tuple[type, tuple[str, ...]] | None = None
    # The second input of the .tflite operator is a constant the IR keeps as an attribute.
    folds_constant_input: bool = False
    # A window op whose pads TFLite cannot express may be written with an explicit PAD in front.
    explicit_pad_op: bool = False
    # (fewest, most) inputs the op takes, checked at import.
    input_count: tuple[int, int] = (1, 1)
    # How refusals name the inputs, by position; inputs beyond these are "input 2", "input 3", ...
    input_roles: tuple[str, ...] = ("input",)
    # The dtypes the op's kernels (reference and C) take as non-constant inputs and give as output;
    # `ops.support` refuses any other before a model is run, compiled, profiled or benchmarked.
    input_dtypes: frozenset[DType] = frozenset({DType.INT8})
    output_dtypes: frozenset[DType] = frozenset({DType.INT8})

    # --- IR --------------------------------------------------------------------------------------

    def output_shape(self, op: Op, input_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        """The output shape from the input shapes (ValueError when they do not fit the op)."""
        return tuple(input_shapes[0])

    def check_values(self, graph: "Graph", op: Op, where: str) -> None:
        """Check the values only this kind constrains, at import (`ops.validation`): the real
        multipliers its ``prepare`` derives, the output quantisation it requires. Raise
        `InvalidValueError` starting with ``where`` (the operator) and naming tensor and field. The
        generic checks (`ir.checks`: shapes, scales, zero points, attributes by type) have passed.
        Default: the requantisation ``in / out`` of the first input."""
        check_requantisation(graph, op, where, op.inputs[:1])

    # --- analysis --------------------------------------------------------------------------------

    def macs(self, graph: "Graph", op: Op) -> int:
        """Multiply-accumulates of one run of ``op``."""
        return 0

    def weight_output_channels(self, graph: "Graph", op: Op) -> int | None:
        """Output channels of the op's weights (each carries requantisation data in Flash), or None
        for an op without weights."""
        return None

    def window(self, graph: "Graph", op: Op, axis: int) -> tuple[int, int, int] | None:
        """(effective kernel, stride, padding before) along spatial ``axis`` (1 = H, 2 = W) of an op
        that can run patch by patch; None when it cannot."""
        return None

    @property
    def patchable(self) -> bool:
        """Whether the op can run on a spatial patch (it defines a `window`)."""
        return type(self).window is not OpDef.window

    spatially_pointwise: bool = False
    """Output pixel (y, x) reads only input pixels (y, x): a window of kernel 1, stride 1, no pad."""

    def pools_globally(self, graph: "Graph", op: Op) -> bool:
        """Whether ``op`` pools its whole [1, H, W, C] input to one value per channel from the
        per-channel sums of its input (`global_pool_from_sums`), so that a multi-stage schedule
        may accumulate them patch by patch (`patch/multistage.py`)."""
        return False

    def global_pool_from_sums(self, graph: "Graph", op: Op, sums: np.ndarray) -> np.ndarray:
        """The output of a global pool (`pools_globally`) from ``sums`` (int64 [C], the sums of
        the raw input values per channel)."""
        raise UnsupportedOpError(f"op {op.name} ({op.kind.value}) is not a global pooling")

    # --- reference runtime -----------------------------------------------------------------------

    def run(self, graph: "Graph", op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
        """The op's output computed by the int8 reference kernel from ``env``."""
        raise UnsupportedOpError(f"unsupported op {op.kind.value} (tensor {op.outputs[0]}): no "
                                 "reference kernel")

    def run_stateful(self, graph: "Graph", op: Op, env: Mapping[str, np.ndarray],
                     state: tuple[np.ndarray, ...] | None) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """(output, state after the run) from ``state``, the op's state after its previous run
        (None: the initial state, as TFLite Micro's variable tensors after a reset). An op with
        state (its `tflite_variable_tensors`) overrides it; the default is `run` and no state."""
        return self.run(graph, op, env), None

    @property
    def has_reference(self) -> bool:
        """Whether the reference runtime can run the op."""
        return type(self).run is not OpDef.run

    # --- C lowering ------------------------------------------------------------------------------

    def lower(self, graph: "Graph", index: int, op: Op, target: LoweringTarget, overlapped: bool,
              row_ring: bool = False) -> LayerCall:
        """The op as a kernel call of the generated C. ``overlapped``: the plan lays the output over
        an input (the op's `overlap`); ``row_ring``: that overlap's buffer is a ring of output rows
        (only in-place depthwise kernels have one)."""
        raise unsupported(graph, index, op, "no C kernel for this op kind")

    def lower_without_scratch(self, graph: "Graph", index: int, op: Op, target: LoweringTarget,
                              overlapped: bool) -> LayerCall | None:
        """The op as a kernel call that needs no scratch (slower; the code generator takes it
        where the scratch of `lower` would grow the arena), ``overlapped`` as in `lower`; None when
        the op kind has no such kernel for it."""
        return None

    @property
    def has_lowering(self) -> bool:
        """Whether code generation can lower the op."""
        return type(self).lower is not OpDef.lower

    # --- .tflite ---------------------------------------------------------------------------------

    def builtin_code(self, kind: OpKind) -> int:
        """TFLite's builtin operator code of ``kind``."""
        return int(getattr(BuiltinOperator, kind.value))

    def decode_attrs(self, kind: OpKind, reader: OptionReader, rop: Any, where: str) -> Attrs:
        """The IR attributes of a decoded operator record ``rop``."""
        return NoAttrs()

    def encode_options(self, kind: OpKind, builder: Any, attrs: Attrs, padding: int,
                       output_name: str) -> int | None:
        """The builtin options table (an offset in ``builder``), or None when the op has none.
        ``padding`` is the TFLite padding chosen for a window op's pads."""
        return None

    def tflite_kept_inputs(self, kind: OpKind, inputs: tuple[int, ...]) -> tuple[int, ...]:
        """The tensors of the .tflite operator's ``inputs`` (-1: absent) that become the op's
        inputs, in order: the first alone when the op folds its constant inputs, else all present."""
        if self.folds_constant_input:
            return (inputs[0],)
        return tuple(i for i in inputs if i >= 0)

    def tflite_inputs(self, kind: OpKind, inputs: list[int], folded: list[int]) -> list[int]:
        """The .tflite operator's input tensors from the op's input tensors and its folded
        constants (`folded_constants`, in order): the inputs, then the constants."""
        return [*inputs, *folded]

    def folded_constants(self, attrs: Attrs) -> tuple[tuple[str, np.ndarray], ...]:
        """(name, int32 values) of the constant inputs that the .tflite operator takes after its
        first input and the IR keeps as attributes."""
        return ()

    def tflite_variable_tensors(self, graph: "Graph", op: Op) -> tuple[tuple[Any, ...], ...]:
        """(name, shape, DType, QuantParams) of the variable (state) tensors the writer creates for
        ``op``; their indices follow the folded constants in `tflite_inputs`. Default: none."""
        return ()

    def tflite_window(self, graph: "Graph", op: Op) -> tuple[tuple[int, int], tuple[int, int],
                                                             tuple[int, int], Pads] | None:
        """(kernel, stride, dilation, pads) of a window op whose pads become TFLite's padding
        option; None for other ops."""
        return None


_DEFS: dict[OpKind, OpDef] = {}
_LOADED = False


def register(definition: OpDef) -> None:
    """Register ``definition`` under each of its kinds (and tell the IR about them)."""
    for kind in definition.kinds:
        known = _DEFS.get(kind)
        if known is not None and known is not definition:
            raise ValueError(f"{kind.value} is defined twice: {type(known).__name__} and "
                             f"{type(definition).__name__}")
        _DEFS[kind] = definition
        register_kind(kind, definition.attrs_type, definition.output_shape)


def discover() -> None:
    """Import every module of `mcuforge.ops` once and register the ``OP_DEFS`` each one lists."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__package__}.{info.name}")
        for definition in getattr(module, "OP_DEFS", ()):
            register(definition)


def find_op_def(kind: OpKind) -> OpDef | None:
    """The definition of ``kind``, or None when no op module implements it."""
    discover()
    return _DEFS.get(kind)


def op_def(kind: OpKind) -> OpDef:
    """The definition of ``kind``; raises `UnsupportedOpError` when no op module implements it."""
    definition = find_op_def(kind)
    if definition is None:
        raise UnsupportedOpError(f"unsupported op {kind.value}")
    return definition


def implemented_kinds() -> tuple[OpKind, ...]:
    """Every implemented kind, in TFLite builtin-code order."""
    discover()
    return tuple(kind for kind in OpKind if kind in _DEFS)


def kinds_where(predicate: Callable[[OpDef], bool]) -> frozenset[OpKind]:
    """The implemented kinds whose definition satisfies ``predicate(definition)``."""
    return frozenset(kind for kind in implemented_kinds() if predicate(_DEFS[kind]))


def definitions() -> Iterable[OpDef]:
    """Every registered definition once."""
    discover()
    seen: list[OpDef] = []
    for definition in _DEFS.values():
        if all(definition is not s for s in seen):
            seen.append(definition)
    return tuple(seen)


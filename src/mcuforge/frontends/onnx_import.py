"""Read an ONNX model into the IR: ``read_onnx(path) -> Graph`` (needs the ``onnx`` package, the
``onnx`` extra of mcuforge).

Two kinds of model:

- **QDQ-quantised** (as ``onnxruntime.quantization.quantize_static`` writes them): every
  QuantizeLinear -> DequantizeLinear pair around an operator is folded away and the operator becomes
  one int8 IR op. An activation's quantisation is that of the QuantizeLinear that reads the
  operator's output; constants behind a DequantizeLinear are int8 weights (per-tensor or per-channel
  along the output channels, symmetric as TFLite requires) or int32 biases (re-expressed in the
  scale ``input scale * weight scale`` that TFLite uses, exactly when ORT's scale is that product).
  uint8 values are shifted to int8 as TFLite's converter does (``q - 128``, zero point - 128). Where
  TFLite's kernel needs a quantisation ORT did not pick (a pool, reshape or transpose keeps its
  input's; a concatenation's inputs share the output's; SOFTMAX writes 1/256, -128) a QUANTIZE
  (int8 -> int8 requantisation) is inserted. The float graph input gets a QUANTIZE, a float output
  a DEQUANTIZE, as in a float-I/O .tflite model.
- **float**: the same operators as float32 IR ops with float32 weights (for analysis, and for
  post-training quantisation: `mcuforge.quant.onnx_ptq`, ``mcuforge import model.onnx``).

Layout: ONNX is NCHW, the IR NHWC. A rank-4 graph input becomes NHWC ``[N, H, W, C]`` (recorded in
``metadata["input_layout"]``); weights are transposed to the IR's layouts (`onnx_nodes`) and a
TRANSPOSE is inserted only where a value must be read in the other layout (a Flatten of a feature
map larger than 1x1, an explicit Transpose). A symbolic dimension (batch) is taken as 1.

An operator with no converter raises ``UnsupportedOpError("unsupported ONNX op TopK at node #7
(name)")``; a file that cannot be parsed raises `ModelFileError`. The graph returned has passed
`mcuforge.ops.validation.validate_model` and `mcuforge.ir.validate`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import McuforgeError, ModelFileError, UnsupportedOpError
from ..ir import DType, Graph, Op, OpKind, QuantParams, Tensor, validate
from ..ir.ops import NoAttrs, TransposeAttrs
from ..ir.shapes import infer_output_shape
from ..ops.validation import validate_model
from .onnx_constants import (Weight, bias_values, dequantized_constant, operand_values,
                             quantize_linear_params, quant_equal, weight_values)
from .onnx_nodes import CONVERTERS, TO_NCHW, TO_NHWC, node_attr
from .tflite_blocks import infer_blocks

_SOFTMAX_OUT = QuantParams.per_tensor(1.0 / 256.0, -128)
_FOLDED = ("Constant", "QuantizeLinear", "DequantizeLinear")


def read_onnx(path: str | os.PathLike[str]) -> Graph:
    """Read the .onnx file at ``path`` into a validated `Graph` (int8 for a QDQ model, float32
    otherwise; blocks inferred as for .tflite)."""
    try:
        import onnx
    except ImportError:
        raise McuforgeError("reading .onnx needs the onnx package (pip install 'mcuforge[onnx]')") from None
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ModelFileError(f"{source}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ModelFileError(f"{source}: not an ONNX model ({type(exc).__name__})") from None
    return graph_from_onnx(model, path.stem, source)


def graph_from_onnx(model, name: str, source: str) -> Graph:
    """Convert a loaded ``onnx.ModelProto`` (see the module docstring); ``source`` is named in errors."""
    try:
        return _Importer(model, source).graph(name)
    except McuforgeError:
        raise
    except (ArithmeticError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{source}: inconsistent model ({type(exc).__name__}: {exc})") from None


def _static_model(model):
    """``model`` with symbolic input dimensions set to 1 and every value's shape inferred."""
    import onnx
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in model.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1
    del model.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


class _Importer:
    """The state of one conversion: ONNX values -> IR tensors (and their layout), IR ops so far."""

    def __init__(self, model, source: str):
        from onnx import numpy_helper
        self.source = source
        self._index = {node.output[0]: i for i, node in enumerate(model.graph.node) if node.output}
        for node in model.graph.node:
            known = node.op_type in CONVERTERS or node.op_type in _FOLDED
            if not known or node.domain not in ("", "ai.onnx"):
                raise UnsupportedOpError(f"unsupported ONNX op {node.op_type} at {self.where(node)}")
        try:
            self.model = _static_model(model)
        except Exception as exc:  # onnx raises its own InferenceError / ValidationError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{source}: shapes cannot be inferred ({first})") from None
        g = self.model.graph
        self.opset = max((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")),
                         default=1)
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for node in g.node:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            elif node.op_type == "Identity" and node.input[0] in self.consts:
                # torch.onnx.export shares equal initializers through Identity nodes
                self.consts[node.output[0]] = self.consts[node.input[0]]
        self.onnx_shapes: dict[str, tuple[int, ...]] = {}
        for v in list(g.input) + list(g.value_info) + list(g.output):
            dims = v.type.tensor_type.shape.dim
            self.onnx_shapes[v.name] = tuple(int(d.dim_value) for d in dims)
        self.qdq = any(n.op_type == "DequantizeLinear" for n in g.node)
        self.qconst: dict[str, Weight] = {}
        self.dq_source: dict[str, str] = {}   # DQ output -> the Q output it reads
        self.q_nodes: dict[str, object] = {}  # Q output -> the Q node
        self.q_of_float: dict[str, list[str]] = {}
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.values: dict[str, tuple[str, bool]] = {}  # ONNX value -> (IR tensor, permuted)
        self._layouts: dict[tuple[str, bool], str] = {}

    # --- helpers for converters --------------------------------------------------------------

    def where(self, node) -> str:
        """``node #i (name)``, as refusals name a node."""
        return f"node #{self._index[node.output[0]]} ({node.name or node.output[0]})"

    def onnx_shape(self, name: str) -> tuple[int, ...]:
        """The ONNX (inferred, static) shape of value ``name``."""
        if name in self.consts:
            return tuple(self.consts[name].shape)
        if name in self.qconst:
            return self.qconst[name].shape
        return self.onnx_shapes[name]

    def shape(self, ir_name: str) -> tuple[int, ...]:
        """The shape of an IR tensor."""
        return self.tensors[ir_name].shape

    def is_constant(self, name: str) -> bool:
        """True for an initializer, a Constant or a DequantizeLinear of one."""
        return name in self.consts or name in self.qconst

    def permuted(self, name: str) -> bool:
        """True when the IR tensor of ONNX value ``name`` is its NHWC transpose."""
        return self._resolve(name)[1]

    def value(self, name: str) -> str:
        """The IR tensor of activation ``name`` in whatever layout it has."""
        return self._resolve(name)[0]

    def nhwc(self, name: str) -> str:
        """The IR tensor of activation ``name`` in NHWC (transposed from NCHW when needed)."""
        ir, permuted = self._resolve(name)
        if permuted or len(self.shape(ir)) != 4:
            return ir
        return self._transposed(ir, TO_NHWC, ":nhwc")

    def plain(self, name: str) -> str:
        """The IR tensor of activation ``name`` in ONNX order."""
        ir, permuted = self._resolve(name)
        return self._transposed(ir, TO_NCHW, ":nchw") if permuted else ir

    def alias(self, onnx_name: str, ir_name: str, permuted: bool) -> None:
        """Make ONNX value ``onnx_name`` stand for an existing IR tensor."""
        self.values[onnx_name] = (ir_name, permuted)

    def scalar(self, node, position: int, default: float) -> float:
        """The scalar constant input ``position`` of ``node`` (``default`` when absent)."""
        if len(node.input) <= position or not node.input[position]:
            return float(default)
        name = node.input[position]
        if name in self.qconst:
            w = self.qconst[name]
            return float((w.values.astype(np.float64) - w.zero_point) * w.scale)
        if name not in self.consts:
            raise UnsupportedOpError(f"unsupported ONNX {node.op_type} with a non-constant input "
                                     f"{name} at {self.where(node)}")
        return float(self.consts[name])

    def weight(self, node, position: int) -> Weight:
        """The constant input ``position`` of ``node`` (refused when it is an activation)."""
        name = node.input[position]
        if self.qdq:
            if name not in self.qconst:
                raise UnsupportedOpError(f"unsupported ONNX {node.op_type} whose input {name} is not "
                                         f"a quantised constant at {self.where(node)}")
            return self.qconst[name]
        if name not in self.consts:
            raise UnsupportedOpError(f"unsupported ONNX {node.op_type} whose input {name} is not a "
                                     f"constant at {self.where(node)}")
        return Weight(self.consts[name].astype(np.float32))

    def weight_tensor(self, node, weight: Weight, perm: tuple[int, ...], channel_axis: int) -> str:
        """An IR constant of ``weight`` transposed by ``perm`` (int8 with its quantisation, whose
        per-channel axis must land on ``channel_axis``, or float32)."""
        values, dtype, quant = weight_values(weight, perm, channel_axis, self._what(node))
        name = self._unique(node.input[1])
        self._tensor(name, values.shape, dtype, quant, values)
        return name

    def bias_tensor(self, node, position: int | None, x: str, weight: Weight, out: int) -> str:
        """The IR bias of a weighted op reading ``x`` (`onnx_constants.bias_values`); zeros when
        ``position`` is None."""
        bias = None
        if position is not None:
            name = node.input[position]
            bias = self.qconst.get(name, self.consts.get(name))
            if bias is None:
                raise UnsupportedOpError(f"unsupported {self._what(node)} with a non-constant bias")
        values, dtype, quant = bias_values(weight, bias, self.tensors[x].quant, out, self._what(node))
        name = self._unique(node.input[position] if position is not None else f"{node.output[0]}:bias")
        self._tensor(name, (out,), dtype, quant, values)
        return name

    def operand_constant(self, node, name: str, rank: int, permuted: bool) -> str:
        """A broadcast constant operand (Add/Mul) in the IR layout (int8 per-tensor, or float32)."""
        constant = self.qconst.get(name) if self.qdq else self.consts[name]
        if constant is None:
            raise UnsupportedOpError(f"unsupported {self._what(node)} with an unquantised constant {name}")
        values, dtype, quant = operand_values(constant, rank, permuted, self._what(node))
        ir = self._unique(name)
        self._tensor(ir, values.shape, dtype, quant, values)
        return ir

    def scalar_operand(self, label: str, value: float) -> str:
        """A one-element constant operand: float32, or in a QDQ model int8 over [0, value] (scale
        value / 255, zero point -128, code 127: exact up to float32), as `quant.graph_ptq` does."""
        if not self.qdq:
            name = self._unique(label)
            self._tensor(name, (1,), DType.FLOAT32, None, np.array([value], np.float32))
            return name
        name = self._unique(label)
        quant = QuantParams.per_tensor(abs(value) / 255.0, -128 if value > 0 else 127)
        self._tensor(name, (1,), DType.INT8, quant, np.array([127 if value > 0 else -128], np.int8))
        return name

    def inner_op(self, node, kind: OpKind, inputs: list[str], attrs, low: float, high: float) -> str:
        """An op inside the expansion of ``node`` (not its output): float32, or in a QDQ model int8
        with the fixed range [low, high] (zero point -128 when low is 0)."""
        name = self._unique(f"{node.name or node.output[0]}:{kind.value.lower()}")
        if not self.qdq:
            return self._op(name, kind, inputs, attrs, name, DType.FLOAT32, None)
        quant = QuantParams.per_tensor((high - low) / 255.0, int(round(-128 - low * 255.0 / (high - low))))
        return self._op(name, kind, inputs, attrs, name, DType.INT8, quant)

    def quantised_like_output(self, node, ir: str) -> str:
        """``ir`` itself, or, for a float activation in a QDQ model (ORT leaves a Relu or Clip on
        the float graph input), its QUANTIZE with the quantisation of ``node``'s output: exact for
        monotonic ops that map 0 to 0, since Q(relu(x)) = max(Q(x), zero point)."""
        if not self.qdq or self.tensors[ir].dtype is not DType.FLOAT32:
            return ir
        readers = self.q_of_float.get(node.output[0])
        if not readers:
            return ir
        return self._requant(ir, self._q_params(self.q_nodes[readers[0]]))

    def emit(self, node, kind: OpKind, inputs: list[str], attrs, permuted: bool,
             same_quant: bool = False, softmax_out: bool = False) -> str:
        """Append the IR op of ``node`` writing its (first) output; in a QDQ model the output takes
        the quantisation of the QuantizeLinear that reads it, through a requantisation where the
        kernel fixes its own (``same_quant``: the input's; ``softmax_out``: 1/256, -128)."""
        y = node.output[0]
        attrs = NoAttrs() if attrs is None else attrs
        op_name = self._unique(re.sub(r"^/+", "", node.name) or f"{kind.value.lower()}_{len(self.ops)}")
        if not self.qdq:
            out = self._op(op_name, kind, inputs, attrs, self._unique(y), DType.FLOAT32, None)
            self.values[y] = (out, permuted)
            return out
        for name in inputs:
            if self.tensors[name].dtype is not DType.INT8 and not self.tensors[name].constant:
                raise UnsupportedOpError(f"unsupported float input {name} of ONNX {node.op_type} in a "
                                         f"quantised model at {self.where(node)}")
        readers = self.q_of_float.get(y)
        if not readers:
            raise UnsupportedOpError(f"unsupported ONNX {node.op_type} whose output {y} is not "
                                     f"quantised at {self.where(node)}")
        want = self._q_params(self.q_nodes[readers[0]])
        if kind is OpKind.CONCATENATION:
            inputs = [i if quant_equal(self.tensors[i].quant, want) else self._requant(i, want)
                      for i in inputs]
        first = want
        if softmax_out:
            first = _SOFTMAX_OUT
        elif same_quant and kind is not OpKind.CONCATENATION:
            first = self.tensors[inputs[0]].quant
        out = self._op(op_name, kind, inputs, attrs, self._unique(y), DType.INT8, first)
        if not quant_equal(first, want):
            out = self._requant(out, want)
        self.values[y] = (out, permuted)
        return out

    # --- internals ---------------------------------------------------------------------------

    def _unique(self, base: str) -> str:
        base = re.sub(r"^/+", "", base) or "t"
        name, k = base, 0
        while name in self.tensors or any(op.name == name for op in self.ops):
            k += 1
            name = f"{base}_{k}"
        return name

    def _tensor(self, name, shape, dtype, quant, data=None) -> None:
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype, quant,
                                    data is not None, data)

    def _op(self, op_name, kind, inputs, attrs, out, dtype, quant) -> str:
        probe = Op(op_name, kind, tuple(inputs), ("?",), attrs)
        shape = infer_output_shape(probe, [self.tensors[i].shape for i in inputs])
        self._tensor(out, shape, dtype, quant)
        self.ops.append(Op(op_name, kind, tuple(inputs), (out,), attrs))
        return out

    def _transposed(self, ir: str, perm: tuple[int, ...], suffix: str) -> str:
        key = (ir, perm == TO_NHWC)
        if key not in self._layouts:
            t = self.tensors[ir]
            self._layouts[key] = self._op(self._unique(f"{ir}{suffix}"), OpKind.TRANSPOSE, [ir],
                                          TransposeAttrs(perm), self._unique(f"{ir}{suffix}"),
                                          t.dtype, t.quant)
        return self._layouts[key]

    def _requant(self, ir: str, quant: QuantParams) -> str:
        float_input = self.tensors[ir].dtype is DType.FLOAT32
        name = self._unique(f"{ir}:{'quantize' if float_input else 'requant'}")
        return self._op(name, OpKind.QUANTIZE, [ir], NoAttrs(), name, DType.INT8, quant)

    def _what(self, node) -> str:
        return f"ONNX {node.op_type} at {self.where(node)}"

    def _q_params(self, node) -> QuantParams:
        """The int8 quantisation of a QuantizeLinear."""
        zp = self._const(node, 2) if len(node.input) > 2 and node.input[2] else None
        return quantize_linear_params(self._const(node, 1), zp, self.where(node))

    def _const(self, node, position: int) -> np.ndarray:
        name = node.input[position]
        if name not in self.consts:
            raise UnsupportedOpError(f"unsupported non-constant {name} of {node.op_type} at "
                                     f"{self.where(node)}")
        return self.consts[name]

    def _dequantized_constant(self, node) -> Weight:
        zp = self._const(node, 2) if len(node.input) > 2 and node.input[2] else None
        return dequantized_constant(self.consts[node.input[0]], self._const(node, 1), zp,
                                    int(node_attr(node, "axis", 1)), self.where(node))

    def _resolve(self, name: str) -> tuple[str, bool]:
        if name in self.values:
            return self.values[name]
        if name in self.dq_source:
            q_out = self.dq_source[name]
            self.values[name] = self._materialise_q(q_out)
            return self.values[name]
        raise UnsupportedOpError(f"{self.source}: value {name} is read before it is computed (or is a "
                                 "constant where an activation is expected)")

    def _materialise_q(self, q_out: str) -> tuple[str, bool]:
        """The int8 IR tensor of a QuantizeLinear's output."""
        if q_out in self.values:
            return self.values[q_out]
        node = self.q_nodes[q_out]
        want = self._q_params(node)
        ir, permuted = self._resolve(node.input[0])
        t = self.tensors[ir]
        if t.dtype is DType.INT8 and quant_equal(t.quant, want):
            out = ir
        elif t.dtype in (DType.INT8, DType.FLOAT32):
            out = self._requant(ir, want)
        else:
            raise UnsupportedOpError(f"unsupported {t.dtype.value} input of QuantizeLinear at "
                                     f"{self.where(node)}")
        self.values[q_out] = (out, permuted)
        return self.values[q_out]

    def graph(self, name: str) -> Graph:
        """Convert every node and assemble the validated graph."""
        g = self.model.graph
        inputs = []
        for v in g.input:
            if v.name in self.consts:
                continue
            shape = self.onnx_shapes[v.name]
            if v.type.tensor_type.elem_type != 1:
                raise UnsupportedOpError(f"unsupported input {v.name} of ONNX element type "
                                         f"{v.type.tensor_type.elem_type} (only float32)")
            permuted = len(shape) == 4
            ir_shape = tuple(shape[p] for p in TO_NHWC) if permuted else shape
            ir = self._unique(v.name)
            self._tensor(ir, ir_shape, DType.FLOAT32, None)
            self.values[v.name] = (ir, permuted)
            inputs.append(ir)
        for node in g.node:
            if node.op_type == "Constant":
                continue
            if node.op_type == "QuantizeLinear":
                self.q_nodes[node.output[0]] = node
                self.q_of_float.setdefault(node.input[0], []).append(node.output[0])
            elif node.op_type == "DequantizeLinear":
                if node.input[0] in self.consts:
                    self.qconst[node.output[0]] = self._dequantized_constant(node)
                else:
                    self.dq_source[node.output[0]] = node.input[0]
            elif node.op_type == "Identity" and node.input[0] in self.qconst:
                self.qconst[node.output[0]] = self.qconst[node.input[0]]  # a shared quantised constant
        for node in g.node:
            if node.op_type in CONVERTERS:
                CONVERTERS[node.op_type](self, node)
        outputs = [self._output(v.name) for v in g.output]
        used = {n for op in self.ops for n in (*op.inputs, *op.outputs)} | set(inputs) | set(outputs)
        tensors = {k: t for k, t in self.tensors.items() if k in used}
        layout = "NHWC (transposed from the ONNX model's NCHW)" if any(
            len(tensors[i].shape) == 4 for i in inputs) else "as in the ONNX model"
        metadata = {"source": self.source, "format": "onnx", "quantisation": "qdq" if self.qdq else "float",
                    "opset": self.opset,
                    "input_layout": layout,
                    "nhwc_outputs": [o for o, v in zip(outputs, g.output)
                                     if self._resolve(v.name)[1]]}
        graph = Graph(name, tensors, tuple(self.ops), tuple(inputs), tuple(outputs), metadata=metadata)
        validate_model(graph, self.source)
        graph = validate(graph)
        return validate(graph.with_ops(graph.ops, blocks=infer_blocks(graph)))

    def _output(self, name: str) -> str:
        """The IR tensor of graph output ``name`` (a DEQUANTIZE to float for a DQ output)."""
        ir, _ = self._resolve(name)
        if self.qdq and name in self.dq_source:
            out = self._unique(name)
            return self._op(out, OpKind.DEQUANTIZE, [ir], NoAttrs(), out, DType.FLOAT32, None)
        return ir


__all__ = ["read_onnx", "graph_from_onnx", "Weight"]

"""Post-training quantisation of a float32 IR graph (any graph the frontends build, e.g. from
`torch.export`) to an int8 graph, with TFLite's full-integer scheme:

- calibration: the float graph runs (`quant/float_eval.py`) on the calibration inputs and an
  observer (`quant/observers.py`: min/max or percentile) records the range of every activation;
- weights of CONV_2D / FULLY_CONNECTED (axis 0) and DEPTHWISE_CONV_2D (axis 3): per-channel
  symmetric int8; biases int32 with scale ``input_scale * weight_scale[c]``;
- a RELU / RELU6 right after a CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, SUB or MUL that
  only it reads (as the ONNX frontend emits them) is fused into that op's clamp first, as TFLite's
  converter does; a RELU6 left standalone keeps its input's parameters (TFLite Micro's int8 RELU6
  clamps the raw codes without rescaling);
- activations: per-tensor asymmetric int8 from the calibrated range, cut to a fused clamp;
  LOGISTIC and SOFTMAX outputs (1/256, -128) and TANH outputs (1/128, 0) as TFLite requires;
  AVERAGE/MAX_POOL_2D, RESHAPE, TRANSPOSE, PAD and RESIZE_NEAREST_NEIGHBOR keep their input's
  parameters (TFLite requires equal ones);
- a constant operand of ADD/MUL/SUB (hard sigmoid's 3 and 1/6, a scalar) is an int8 tensor
  quantised over [min(v, 0), max(v, 0)];
- CONCATENATION: its output covers the union of its inputs' ranges, and an input with other
  parameters goes through a QUANTIZE (int8 -> int8 requantisation) first, the edge TFLite's
  converter inserts; TFLite Micro's int8 CONCATENATION copies bytes and needs equal parameters.

The int8 graph keeps the float graph's names, shapes and ops; its input and output are int8 (the
converter's ``inference_input_type = int8``); the input's quantisation is how callers turn float
data into model input (`quantize_input`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import McuforgeError, UnsupportedOpError
from ..frontends.tflite_blocks import infer_blocks
from ..ir import NO_CLAMP, DType, Graph, Op, OpKind, NoAttrs, QuantParams, Tensor, validate
from ..ops.validation import validate_model
from .float_eval import evaluate_float
from .observers import activation_quant_params, clamp_range, make_observer
from .weights import bias_weight_scale_floor, quantize_bias, quantize_weights

_WEIGHT_AXIS = {OpKind.CONV_2D: 0, OpKind.FULLY_CONNECTED: 0, OpKind.DEPTHWISE_CONV_2D: 3}
_SAME_AS_INPUT = (OpKind.AVERAGE_POOL_2D, OpKind.MAX_POOL_2D, OpKind.RESHAPE, OpKind.TRANSPOSE,
                  OpKind.PAD, OpKind.RESIZE_NEAREST_NEIGHBOR, OpKind.RELU6)
_FIXED_OUTPUT = {OpKind.LOGISTIC: (1.0 / 256.0, -128), OpKind.SOFTMAX: (1.0 / 256.0, -128),
                 OpKind.TANH: (1.0 / 128.0, 0)}
_CALIBRATED = (OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.MEAN, OpKind.HARD_SWISH, OpKind.RELU)
_ACT_CLAMPS = {OpKind.RELU: (0.0, float("inf")), OpKind.RELU6: (0.0, 6.0)}
_FUSES_ACTIVATION = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED, OpKind.ADD,
                     OpKind.SUB, OpKind.MUL)


def fuse_activations(graph: Graph) -> Graph:
    """``graph`` with every RELU / RELU6 that follows an op of `_FUSES_ACTIVATION` without a clamp
    (read by nothing else, not a graph output) folded into that op's clamp."""
    readers: dict[str, int] = {}
    for op in graph.ops:
        for name in op.inputs:
            readers[name] = readers.get(name, 0) + 1
    producer = {op.outputs[0]: op for op in graph.ops}
    fused: dict[str, Op] = {}  # producer name -> producer with the clamp and the relu's output
    dropped: set[str] = set()
    for op in graph.ops:
        if op.kind not in _ACT_CLAMPS:
            continue
        source = producer.get(op.inputs[0])
        if source is None or source.kind not in _FUSES_ACTIVATION or source.name in fused or \
                getattr(source.attrs, "clamp", None) != NO_CLAMP or readers[op.inputs[0]] != 1 \
                or op.inputs[0] in graph.outputs:
            continue
        fused[source.name] = replace(source, outputs=op.outputs,
                                     attrs=replace(source.attrs, clamp=_ACT_CLAMPS[op.kind]))
        dropped |= {op.name, op.inputs[0]}
    if not fused:
        return graph
    ops = [fused.get(op.name, op) for op in graph.ops if op.name not in dropped]
    tensors = {name: t for name, t in graph.tensors.items() if name not in dropped}
    graph = graph.with_ops(ops, tensors=tensors, blocks=())
    return validate(graph.with_ops(graph.ops, blocks=infer_blocks(graph)))


class _Observers:
    """One observer per activation tensor."""

    def __init__(self, kind: str):
        self.kind = kind
        self.by_name: dict[str, object] = {}

    def __call__(self, name: str, value: np.ndarray) -> None:
        import torch
        if name not in self.by_name:
            self.by_name[name] = make_observer(self.kind)
        self.by_name[name].observe(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {name: obs.range() for name, obs in self.by_name.items()}


def calibrate_float_graph(graph: Graph, samples: Iterable[np.ndarray], observer: str = "minmax"
                          ) -> dict[str, tuple[float, float]]:
    """(low, high) of every activation of the float ``graph`` over ``samples`` (each one input
    array in the graph input's NHWC shape, or a batch of them along axis 0)."""
    observers = _Observers(observer)
    (input_name,) = graph.inputs
    shape = graph.tensor(input_name).shape
    seen = 0
    for sample in samples:
        sample = np.asarray(sample, dtype=np.float32)
        batch = sample.reshape((-1, *shape[1:])) if sample.size != np.prod(shape) else \
            sample.reshape((1, *shape[1:]))
        for one in batch:
            evaluate_float(graph, [one[None]], observers)
            seen += 1
    if seen == 0:
        raise McuforgeError("calibration needs at least one sample")
    return observers.ranges()


class _GraphQuantizer:
    """Builds the int8 tensors and ops of a float graph, op by op."""

    def __init__(self, graph: Graph, ranges: dict[str, tuple[float, float]]):
        self.graph = graph
        self.ranges = ranges
        self.tensors: dict[str, Tensor] = dict(graph.tensors)
        self.ops: list[Op] = []

    def _range(self, name: str) -> tuple[float, float]:
        if name not in self.ranges:
            raise McuforgeError(f"no calibrated range for tensor {name}")
        return self.ranges[name]

    def _set(self, name: str, quant: QuantParams, dtype: DType = DType.INT8,
             data: np.ndarray | None = None) -> None:
        self.tensors[name] = replace(self.tensors[name], dtype=dtype, quant=quant,
                                     data=data if data is not None else self.tensors[name].data)

    def _quant(self, name: str) -> QuantParams:
        return self.tensors[name].quant

    def run(self) -> Graph:
        """The int8 graph."""
        (input_name,) = self.graph.inputs
        self._set(input_name, activation_quant_params(*self._range(input_name)))
        for op in self.graph.ops:
            self._constants(op)
            y = op.outputs[0]
            if op.kind in _WEIGHT_AXIS:
                self._weighted(op)
            elif op.kind in _SAME_AS_INPUT:
                self._set(y, self._quant(op.inputs[0]))
            elif op.kind in _FIXED_OUTPUT:
                scale, zero_point = _FIXED_OUTPUT[op.kind]
                self._set(y, QuantParams((scale,), (zero_point,)))
            elif op.kind is OpKind.CONCATENATION:
                op = self._concatenation(op)
            elif op.kind in _CALIBRATED:
                clamp = getattr(op.attrs, "clamp", None) or _ACT_CLAMPS.get(op.kind)
                low, high = self._range(y)
                if clamp is not None:
                    low, high = clamp_range(low, high, clamp)
                self._set(y, activation_quant_params(low, high))
            else:
                raise UnsupportedOpError(f"post-training quantisation of {op.kind.value} "
                                         f"({op.name}) is not supported")
            self.ops.append(op)
        return Graph(self.graph.name, self.tensors, tuple(self.ops), self.graph.inputs,
                     self.graph.outputs, self.graph.blocks, dict(self.graph.metadata))

    def _constants(self, op: Op) -> None:
        """Constant activation operands (ADD/MUL/SUB/CONCATENATION) as int8 tensors."""
        if op.kind in _WEIGHT_AXIS:
            return
        for name in op.inputs:
            tensor = self.tensors[name]
            if tensor.constant and tensor.dtype is DType.FLOAT32:
                values = np.asarray(tensor.data, dtype=np.float64)
                quant = activation_quant_params(min(values.min(), 0.0), max(values.max(), 0.0))
                codes = np.clip(np.round(values / quant.scale[0]) + quant.zero_point[0], -128, 127)
                self._set(name, quant, DType.INT8, codes.astype(np.int8))

    def _weighted(self, op: Op) -> None:
        x_name, w_name, b_name = op.inputs
        w = np.asarray(self.tensors[w_name].data, dtype=np.float64)
        bias = np.asarray(self.tensors[b_name].data, dtype=np.float64)
        x_scale = self._quant(x_name).scale[0]
        q_w, w_quant = quantize_weights(w, _WEIGHT_AXIS[op.kind], 8, "max",
                                        bias_weight_scale_floor(bias, x_scale))
        self._set(w_name, w_quant, DType.INT8, q_w)
        q_b, b_quant = quantize_bias(bias, x_scale, w_quant)
        self._set(b_name, b_quant, DType.INT32, q_b)
        low, high = clamp_range(*self._range(op.outputs[0]), op.attrs.clamp)
        self._set(op.outputs[0], activation_quant_params(low, high))

    def _concatenation(self, op: Op) -> Op:
        """The union range for the output; a QUANTIZE before each input with other parameters."""
        y = op.outputs[0]
        lows, highs = zip(*(self._real_range(name) for name in op.inputs))
        low, high = clamp_range(min(lows), max(highs), op.attrs.clamp)
        y_quant = activation_quant_params(low, high)
        self._set(y, y_quant)
        inputs = []
        for index, name in enumerate(op.inputs):
            q = self._quant(name)
            if q.zero_point[0] == y_quant.zero_point[0] and \
                    np.float32(q.scale[0]) == np.float32(y_quant.scale[0]):
                inputs.append(name)
                continue
            out = f"{op.name}.requant{index}:out"
            shape = self.tensors[name].shape
            self.tensors[out] = Tensor(out, shape, DType.INT8, y_quant)
            self.ops.append(Op(f"{op.name}.requant{index}", OpKind.QUANTIZE, (name,), (out,),
                               NoAttrs()))
            inputs.append(out)
        return replace(op, inputs=tuple(inputs))

    def _real_range(self, name: str) -> tuple[float, float]:
        """The real range an int8 tensor can hold."""
        q = self._quant(name)
        return q.scale[0] * (-128 - q.zero_point[0]), q.scale[0] * (127 - q.zero_point[0])


def quantize_float_graph(graph: Graph, samples: Iterable[np.ndarray], observer: str = "minmax"
                         ) -> Graph:
    """The int8 graph of the float ``graph`` calibrated on ``samples`` (see the module doc)."""
    if any(t.dtype is not DType.FLOAT32 for n, t in graph.tensors.items() if not t.constant):
        raise McuforgeError(f"graph {graph.name} is not a float32 graph")
    if len(graph.inputs) != 1:
        raise McuforgeError(f"graph {graph.name} has {len(graph.inputs)} inputs; post-training "
                            "quantisation of a float graph takes one")
    graph = fuse_activations(graph)
    ranges = calibrate_float_graph(graph, samples, observer)
    int8 = validate(_GraphQuantizer(graph, ranges).run())
    int8 = int8.with_ops(int8.ops, blocks=infer_blocks(int8))
    int8 = replace(int8, metadata={**int8.metadata, "quantization": {
        "weight_bits": 8, "activation_bits": 8, "observer": observer, "scheme": "graph ptq"}})
    return validate_model(int8, graph.name)


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float NHWC data -> the int8 graph's input codes."""
    q = graph.tensor(graph.inputs[0]).quant
    codes = np.round(np.asarray(x, dtype=np.float64) / q.scale[0]) + q.zero_point[0]
    return np.clip(codes, -128, 127).astype(np.int8).reshape(graph.tensor(graph.inputs[0]).shape)


def dequantize_output(graph: Graph, y: np.ndarray) -> np.ndarray:
    """The int8 graph's output codes -> real values."""
    q = graph.tensor(graph.outputs[0]).quant
    return (np.asarray(y, dtype=np.float64) - q.zero_point[0]) * q.scale[0]


def float_int8_agreement(float_model: Graph | Callable[[np.ndarray], np.ndarray],
                         int8_graph: Graph, samples: Sequence[np.ndarray]) -> dict[str, float]:
    """Float model vs int8 graph (reference runtime) on ``samples`` (NHWC inputs): the fraction of
    equal argmaxes, the largest absolute difference of the dequantised outputs and the output's
    float range (for scale), over ``count`` samples. ``float_model`` is a float graph or a function
    of one NHWC sample (e.g. a torch module's forward) giving the float output."""
    from ..runtime.reference import Interpreter
    interpreter = Interpreter(int8_graph)
    agree, max_diff, span, count = 0, 0.0, 0.0, 0
    for x in samples:
        if isinstance(float_model, Graph):
            (f,) = evaluate_float(float_model, [x])
        else:
            f = np.asarray(float_model(x), dtype=np.float64)
        (q,) = interpreter.invoke([quantize_input(int8_graph, x)])
        d = dequantize_output(int8_graph, q).reshape(f.shape)
        agree += int(np.argmax(f) == np.argmax(d))
        max_diff = max(max_diff, float(np.max(np.abs(f - d))))
        span = max(span, float(np.max(f) - np.min(f)))
        count += 1
    return {"argmax_agreement": agree / max(count, 1), "max_abs_diff": max_diff,
            "output_span": span, "count": count}


__all__ = ["calibrate_float_graph", "dequantize_output", "float_int8_agreement", "fuse_activations",
           "quantize_float_graph", "quantize_input"]

"""`validate_model`: every value a model file carries is checked at import, and a bad one is one
`InvalidValueError` naming the operator, the tensor and the field (issue 13's classes, one each);
the kind-specific checks come from the op modules' `OpDef` hooks."""

from __future__ import annotations

import dataclasses
import math

import pytest

from conftest import require_reference_file
from mcuforge.errors import InvalidGraphError, InvalidValueError, ModelFileError
from mcuforge.frontends.tflite import graph_from_raw, read_tflite
from mcuforge.frontends.tflite_decode import RawModel, RawQuant, decode_model
from mcuforge.ops.validation import validate_model

PERSON = "models/tflite_micro/person_detect.tflite"
SPEECH = "models/tflite_micro/micro_speech_quantized.tflite"
REFERENCE_MODELS = [
    "models/mcunet/mcunet-320kb-1mb_imagenet.tflite",
    "models/mlperf_tiny/ad01_int8.tflite",
    "models/mlperf_tiny/kws_ref_model.tflite",
    "models/mlperf_tiny/pretrainedResnet_quant.tflite",
    "models/mlperf_tiny/vww_96_int8.tflite",
    "models/tflite_micro/hello_world_int8.tflite",
    SPEECH,
    PERSON,
    "models/tinyengine/vww.tflite",
]


def _raw(relative: str) -> RawModel:
    path = require_reference_file(relative)
    return decode_model(path.read_bytes(), path.name)


def _with_option(raw: RawModel, op_index: int, **options: object) -> RawModel:
    ops = list(raw.operators)
    ops[op_index] = dataclasses.replace(ops[op_index], options={**ops[op_index].options, **options})
    return dataclasses.replace(raw, operators=tuple(ops))


def _with_tensor(raw: RawModel, tensor_index: int, **fields: object) -> RawModel:
    tensors = list(raw.tensors)
    tensors[tensor_index] = dataclasses.replace(tensors[tensor_index], **fields)
    return dataclasses.replace(raw, tensors=tuple(tensors))


def _with_quant(raw: RawModel, tensor_index: int, scale=None, zero_point=None) -> RawModel:
    quant = raw.tensors[tensor_index].quant
    assert quant is not None
    new = RawQuant(tuple(scale) if scale is not None else quant.scale,
                   tuple(zero_point) if zero_point is not None else quant.zero_point,
                   quant.quantized_dimension)
    return _with_tensor(raw, tensor_index, quant=new)


def _refusal(raw: RawModel) -> str:
    with pytest.raises(InvalidValueError) as caught:
        graph_from_raw(raw, name="m", source="model.tflite")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("model.tflite: ")
    return message


@pytest.mark.parametrize("relative", REFERENCE_MODELS)
def test_every_reference_model_validates(relative: str) -> None:
    graph = read_tflite(require_reference_file(relative))
    assert validate_model(graph) is graph


def test_invalid_value_error_is_a_graph_and_a_model_file_error() -> None:
    assert issubclass(InvalidValueError, InvalidGraphError)
    assert issubclass(InvalidValueError, ModelFileError)


def test_huge_dilation_names_operator_field_and_input_extent() -> None:
    raw = _with_option(_raw(PERSON), 1, DilationHFactor=2 ** 31 - 1)
    message = _refusal(raw)
    assert "operator #1 depthwise_conv_2d_1 (DEPTHWISE_CONV_2D)" in message
    assert "dilation_h 2147483647 exceeds input height 48" in message


def test_zero_stride_and_stride_beyond_input_are_refused() -> None:
    raw = _raw(PERSON)
    assert "at least 1" in str(pytest.raises(ModelFileError, graph_from_raw,
                                             _with_option(raw, 1, StrideW=0), "m", "model.tflite").value)
    assert "stride_w 1000 exceeds padded input width" in _refusal(_with_option(raw, 1, StrideW=1000))


def test_zero_point_outside_int8_names_the_tensor() -> None:
    raw = _raw(PERSON)
    x = raw.operators[1].inputs[0]
    message = _refusal(_with_quant(raw, x, zero_point=[300]))
    assert ("operator #0 depthwise_conv_2d_0 (DEPTHWISE_CONV_2D): output tensor "
            f"{raw.tensors[x].name}: zero point 300 outside int8 [-128, 127]") in message
    assert "zero point -9223372036854775808" in _refusal(_with_quant(raw, x, zero_point=[-2 ** 63]))


def test_bias_zero_point_must_be_zero() -> None:
    raw = _raw(PERSON)
    bias = raw.operators[1].inputs[2]
    assert "zero point 5 outside int32 [0, 0]" in _refusal(_with_quant(raw, bias, zero_point=[5] * len(
        raw.tensors[bias].quant.scale)))


@pytest.mark.parametrize("bad_scale", [math.nan, math.inf, 0.0, -0.5, 1e-45])
def test_bad_activation_scale_is_refused(bad_scale: float) -> None:
    raw = _raw(PERSON)
    y = raw.operators[1].outputs[0]
    message = _refusal(_with_quant(raw, y, scale=[bad_scale]))
    assert f"tensor {raw.tensors[y].name}: scale" in message


def test_scale_that_makes_an_unrepresentable_multiplier_is_refused() -> None:
    raw = _raw(PERSON)
    y = raw.operators[1].outputs[0]
    message = _refusal(_with_quant(raw, y, scale=[1e-15]))
    assert "multiplier" in message and "shift" in message and "> 30" in message


def test_huge_input_scale_is_refused_before_codegen_can_shift_by_more_than_31_bits() -> None:
    raw = _raw(SPEECH)
    x = raw.operators[1].inputs[0]
    assert "not representable" in _refusal(_with_quant(raw, x, scale=[1e12]))


def test_zero_dimension_is_refused() -> None:
    raw = _raw(SPEECH)
    y = raw.operators[2].outputs[0]
    shape = list(raw.tensors[y].shape)
    shape[-1] = 0
    with pytest.raises(ModelFileError, match="dimension|shape"):
        graph_from_raw(_with_tensor(raw, y, shape=tuple(shape)), "m", "model.tflite")


@pytest.mark.parametrize("beta", [0.0, -1.0, math.nan])
def test_softmax_beta_must_be_positive(beta: float) -> None:
    message = _refusal(_with_option(_raw(SPEECH), 3, Beta=beta))
    assert "operator #3 softmax_3 (SOFTMAX): beta" in message


def test_softmax_output_quantisation_is_checked() -> None:
    raw = _raw(SPEECH)
    y = raw.operators[3].outputs[0]
    assert "int8 SOFTMAX needs scale 1/256" in _refusal(_with_quant(raw, y, zero_point=[0]))


@pytest.mark.parametrize("field", ["operators", "inputs", "outputs"])
def test_empty_subgraph_is_refused(field: str) -> None:
    raw = dataclasses.replace(_raw(SPEECH), **{field: ()})
    with pytest.raises(ModelFileError, match="no operators|no inputs|no outputs|never written"):
        graph_from_raw(raw, "m", "model.tflite")


def test_analytic_zoo_graph_validates_and_source_names_it() -> None:
    from mcuforge.frontends.load import load_graph

    graph = load_graph("mcunet-in3")
    assert validate_model(graph, "mcunet-in3") is graph
    empty = dataclasses.replace(graph, ops=())
    with pytest.raises(InvalidValueError, match="^mcunet-in3: the graph has no operators$"):
        validate_model(empty, "mcunet-in3")


def test_op_modules_define_the_kind_specific_hooks() -> None:
    from mcuforge.ir import OpKind
    from mcuforge.ops import OpDef, op_def

    assert op_def(OpKind.CONV_2D).input_count == (2, 3)
    assert op_def(OpKind.FULLY_CONNECTED).input_roles == ("input", "weights", "bias")
    assert op_def(OpKind.ADD).input_count == (2, 2)
    assert op_def(OpKind.RELU).input_count == (1, 1)
    assert type(op_def(OpKind.SOFTMAX)).check_values is not OpDef.check_values


def test_input_count_comes_from_the_op_definition() -> None:
    from mcuforge.ir import ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor
    from mcuforge.ir.tensor import DType

    x = Tensor("x", (1, 4), DType.INT8, QuantParams.per_tensor(0.1, 0))
    y = Tensor("y", (1, 4), DType.INT8, QuantParams.per_tensor(0.1, 0))
    add = Op("add", OpKind.ADD, ("x",), ("y",), ElementwiseAttrs())
    graph = Graph("add", {"x": x, "y": y}, (add,), ("x",), ("y",))
    with pytest.raises(InvalidValueError,
                       match=r"^graph add: operator #0 add \(ADD\): has 1 inputs, expected 2$"):
        validate_model(graph)


def _first_op_of(raw: RawModel, builtin: str) -> int:
    from tflite.BuiltinOperator import BuiltinOperator

    code = getattr(BuiltinOperator, builtin)
    return next(i for i, rop in enumerate(raw.operators) if rop.builtin_code == code)


@pytest.mark.parametrize("model, builtin, role", [
    (SPEECH, "FULLY_CONNECTED", "weights"),
    (PERSON, "CONV_2D", "filter"),
    (PERSON, "DEPTHWISE_CONV_2D", "filter"),
])
def test_weights_with_a_nonzero_zero_point_are_refused(model: str, builtin: str, role: str) -> None:
    raw = _raw(model)
    index = _first_op_of(raw, builtin)
    w = raw.operators[index].inputs[1]
    zero_points = list(raw.tensors[w].quant.zero_point)
    zero_points[-1] = 3
    message = _refusal(_with_quant(raw, w, zero_point=zero_points))
    assert (f"operator #{index} " in message and f"({builtin}): {role} tensor "
            f"{raw.tensors[w].name}: zero point 3 of channel {len(zero_points) - 1}") in message
    assert "symmetric" in message

"""PyTorch in: torch.export -> float IR -> post-training quantisation -> int8 graph that is bit-exact
with TFLite Micro (written by our .tflite writer) and whose generated C equals the reference runtime.

The models are in tests/torch_models.py; MobileNetV3-Small is written there as an nn.Module with torchvision's exact configuration
(torchvision is not installable next to the torch wheel in this environment): conv stem with
h-swish, eleven inverted residuals with depthwise convs, squeeze-excite with hard sigmoid gating,
ReLU and h-swish, global pool, linear head with h-swish; random weights, 64x64 input.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_image_folder

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from codegen_support import HAVE_ARM, differential_run  # noqa: E402
from tflm_support import assert_matches_tflm  # noqa: E402
import mcuforge  # noqa: E402
from mcuforge.cli import main  # noqa: E402
from mcuforge.errors import McuforgeError, UnsupportedOpError  # noqa: E402
from mcuforge.frontends.load import load_graph  # noqa: E402
from mcuforge.frontends.tflite import read_tflite  # noqa: E402
from mcuforge.frontends.tflite_writer import write_tflite  # noqa: E402
from mcuforge.ir import DType, OpKind  # noqa: E402
from mcuforge.quant.float_eval import evaluate_float  # noqa: E402
from mcuforge.quant.graph_ptq import float_int8_agreement, quantize_input  # noqa: E402
from mcuforge.quant.torch_import import from_torch, import_pt2, to_ir_layout  # noqa: E402
from mcuforge.runtime.reference import Interpreter  # noqa: E402
from torch_models import Extras, KitchenSink, MobileNetV3Small, ResidualConcatNet  # noqa: E402


def _prepare(model, shape, seed=0, count=48, scale=1.0):
    """(module, float graph, int8 graph, NCHW calibration array) of a freshly seeded ``model()``
    with BN statistics made non-trivial."""
    torch.manual_seed(seed)
    module = model()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    module.eval()
    data = torch.randn(count, *shape[1:]) * scale
    example = data[:1]
    float_graph = from_torch(module, example)
    int8 = from_torch(module, example, calibration=data)
    return module, float_graph, int8, data


def _held_out(float_graph, data, count=64):
    """Calibration-like data the calibration did not see: same distribution, other draws."""
    generator = torch.Generator().manual_seed(1234)
    return to_ir_layout(float_graph, torch.randn(count, *data.shape[1:], generator=generator))


@pytest.mark.parametrize("model, shape", [
    (ResidualConcatNet, (1, 3, 16, 16)),
    (MobileNetV3Small, (1, 3, 64, 64)),
    (KitchenSink, (1, 3, 8, 8)),
])
def test_float_graph_equals_torch(model, shape):
    module, float_graph, _, data = _prepare(model, shape)
    with torch.no_grad():
        want = module(data[:4]).numpy()
    got = np.concatenate([evaluate_float(float_graph, [x])[0]
                          for x in to_ir_layout(float_graph, data[:4])])
    assert np.max(np.abs(got - want)) < 1e-4
    assert all(t.dtype is DType.FLOAT32 for t in float_graph.tensors.values())


@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_batch_norm_is_folded_with_its_eps(eps):
    # The first BN folds into the conv; the second, after the (fused) ReLU, is a 1x1 depthwise conv.
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, eps=eps), nn.ReLU(),
                           nn.BatchNorm2d(4, eps=eps))
    for bn in (module[1], module[3]):
        bn.running_var.uniform_(0.05, 0.2)
        bn.running_mean.uniform_(-1, 1)
    module.eval()
    x = torch.randn(1, 3, 6, 6)
    graph = from_torch(module, x)
    assert [op.kind for op in graph.ops] == [OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D]
    (got,) = evaluate_float(graph, to_ir_layout(graph, x))
    want = module(x).detach().numpy().transpose(0, 2, 3, 1)
    assert np.max(np.abs(got - want)) < 1e-4


def test_buffer_operands_follow_the_layout():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 1)
            self.register_buffer("gain", torch.tensor([[[[0.5]], [[2.0]], [[-1.0]]]]))
            self.register_buffer("offset", torch.tensor(0.25))

        def forward(self, x):
            return self.conv(x) * self.gain + self.offset

    module = Scaled().eval()
    x = torch.randn(1, 2, 4, 5)
    graph = from_torch(module, x)
    (got,) = evaluate_float(graph, to_ir_layout(graph, x))
    want = module(x).detach().numpy().transpose(0, 2, 3, 1)
    assert np.max(np.abs(got - want)) < 1e-5


def test_user_model_residual_concat_bit_exact_with_tflm_and_c(tmp_path, capsys):
    module, float_graph, int8, data = _prepare(ResidualConcatNet, (1, 3, 16, 16))
    kinds = {op.kind for op in int8.ops}
    assert {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.ADD, OpKind.CONCATENATION,
            OpKind.MAX_POOL_2D, OpKind.AVERAGE_POOL_2D, OpKind.FULLY_CONNECTED} <= kinds
    assert not any(t.dtype is DType.FLOAT32 for t in int8.tensors.values())
    inputs = to_ir_layout(float_graph, data)
    for x in inputs[:4]:
        assert_matches_tflm(int8, [quantize_input(int8, x)])
    assert_matches_tflm(int8, [np.full(int8.tensor(int8.inputs[0]).shape, 127, np.int8)])
    agreement = float_int8_agreement(float_graph, int8, _held_out(float_graph, data))
    with capsys.disabled():
        print(f"\nResidualConcatNet float vs int8: {agreement}")
    assert agreement["argmax_agreement"] >= 0.85
    assert agreement["max_abs_diff"] < 0.1 * agreement["output_span"]
    # The Cortex-M7 build under QEMU too, where the Arm toolchain is installed.
    expected = {"host-asan": 0, "qemu": 0} if HAVE_ARM else {"host-asan": 0}
    assert differential_run(int8, tmp_path, qemu=HAVE_ARM, target="cortex-m7") == expected


def test_mobilenet_v3_small_bit_exact_with_tflm_and_c(tmp_path, capsys):
    module, float_graph, int8, data = _prepare(MobileNetV3Small, (1, 3, 64, 64), count=32)
    kinds = {op.kind for op in int8.ops}
    assert {OpKind.HARD_SWISH, OpKind.MUL, OpKind.ADD, OpKind.AVERAGE_POOL_2D} <= kinds
    inputs = to_ir_layout(float_graph, data)
    for x in inputs[:3]:
        assert_matches_tflm(int8, [quantize_input(int8, x)])
    agreement = float_int8_agreement(float_graph, int8, _held_out(float_graph, data))
    with capsys.disabled():
        print(f"\nMobileNetV3Small float vs int8: {agreement}")
    assert agreement["max_abs_diff"] < 0.25 * agreement["output_span"]
    expected = {"host-asan": 0, "qemu": 0} if HAVE_ARM else {"host-asan": 0}
    assert differential_run(int8, tmp_path, qemu=HAVE_ARM, target="cortex-m7") == expected


def test_kitchen_sink_bit_exact_with_tflm_and_c(tmp_path):
    module, float_graph, int8, data = _prepare(KitchenSink, (1, 3, 8, 8))
    kinds = {op.kind for op in int8.ops}
    assert {OpKind.RESIZE_NEAREST_NEIGHBOR, OpKind.PAD, OpKind.LOGISTIC, OpKind.TANH,
            OpKind.MEAN, OpKind.TRANSPOSE, OpKind.RESHAPE} <= kinds
    for x in to_ir_layout(float_graph, data)[:3]:
        assert_matches_tflm(int8, [quantize_input(int8, x)])
    assert differential_run(int8, tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_extras_bit_exact_with_tflm_and_c(tmp_path):
    module, float_graph, int8, data = _prepare(Extras, (1, 2, 9, 9))
    assert {OpKind.SUB, OpKind.SOFTMAX, OpKind.MAX_POOL_2D} <= {op.kind for op in int8.ops}
    with torch.no_grad():
        want = module(data[:2]).numpy()
    got = np.concatenate([evaluate_float(float_graph, [x])[0]
                          for x in to_ir_layout(float_graph, data[:2])])
    assert np.max(np.abs(got - want)) < 1e-5
    for x in to_ir_layout(float_graph, data)[:3]:
        assert_matches_tflm(int8, [quantize_input(int8, x)])
    assert differential_run(int8, tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_unsupported_pool_options_are_refused_in_one_line():
    class Padded(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 3, stride=1, padding=1)

    with pytest.raises(UnsupportedOpError, match=r"max_pool2d.*padding \[1, 1\].*at .*py:\d+"):
        from_torch(Padded(), torch.randn(1, 2, 6, 6))


def test_int8_graph_round_trips_through_tflite(tmp_path):
    _, _, int8, data = _prepare(ResidualConcatNet, (1, 3, 16, 16), count=8)
    path = tmp_path / "model.tflite"
    write_tflite(int8, path)
    back = read_tflite(path)
    assert [op.kind for op in back.ops] == [op.kind for op in int8.ops]
    x = quantize_input(int8, to_ir_layout(int8, data[:1])[0])
    assert np.array_equal(Interpreter(back).invoke([x])[0], Interpreter(int8).invoke([x])[0])


def test_mcuforge_from_torch_is_the_api():
    assert mcuforge.from_torch is from_torch


def test_unsupported_aten_op_names_op_and_source_line():
    class Gelu(nn.Module):
        def forward(self, x):
            return F.gelu(x)  # the line the message must name

    with pytest.raises(UnsupportedOpError) as info:
        from_torch(Gelu(), torch.randn(1, 4))
    message = str(info.value)
    assert "\n" not in message and "gelu" in message
    assert "test_torch_import.py:" in message and "F.gelu(x)" in message


def test_unsupported_option_names_op_and_line():
    class Grouped(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, groups=2)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(UnsupportedOpError, match=r"conv2d.*grouped conv2d.*at "):
        from_torch(Grouped(), torch.randn(1, 4, 6, 6))


def test_pt2_file_import_command_profile_and_compile(tmp_path, capsys):
    module, _, int8, data = _prepare(ResidualConcatNet, (1, 3, 16, 16), count=16)
    pt2 = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(module, (data[:1],)), str(pt2))
    float_graph = load_graph(str(pt2))
    assert float_graph.tensor("x").dtype is DType.FLOAT32 and float_graph.blocks
    assert import_pt2(pt2, data).ops == int8.ops
    npy = tmp_path / "calib.npy"
    np.save(npy, data.numpy())
    out = tmp_path / "model.tflite"
    assert main(["import", str(pt2), "-o", str(out), "--calibration", str(npy)]) == 0
    text = capsys.readouterr().out
    assert "argmax agreement" in text and "max abs diff" in text
    written = read_tflite(out)  # the same calibration data, so the same quantisation
    assert [op.kind for op in written.ops] == [op.kind for op in int8.ops]
    for x in to_ir_layout(int8, data[:4]):
        codes = quantize_input(int8, x)
        assert np.array_equal(Interpreter(written).invoke([codes])[0],
                              Interpreter(int8).invoke([codes])[0])
    assert main(["profile", str(pt2), "--json"]) == 0
    capsys.readouterr()
    assert main(["compile", str(pt2), "-o", str(tmp_path / "c"), "--no-measure"]) == 2
    err = capsys.readouterr().err
    assert "float model" in err and "--calibration" in err and "--dataset" in err
    assert err.count("\n") == 1
    assert main(["import", str(pt2), "-o", str(out)]) == 2
    assert "--calibration" in capsys.readouterr().err
    (tmp_path / "junk.pt2").write_bytes(b"not a zip")
    assert main(["import", str(tmp_path / "junk.pt2"), "-o", str(out), "--calibration",
                 str(npy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a torch.export file" in err


def test_import_command_calibrates_on_an_image_folder(tmp_path, capsys):
    write_image_folder(tmp_path / "images", per_class=4)
    torch.manual_seed(0)
    module = ResidualConcatNet().eval()
    pt2 = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(module, (torch.randn(1, 3, 16, 16),)), str(pt2))
    out = tmp_path / "model.tflite"
    assert main(["import", str(pt2), "-o", str(out), "--dataset", str(tmp_path / "images"),
                 "--samples", "6"]) == 0
    assert "calibrated on 6 samples" in capsys.readouterr().out
    graph = read_tflite(out)
    assert_matches_tflm(graph, [np.zeros(graph.tensor(graph.inputs[0]).shape, np.int8)])


def test_batch_must_be_one():
    with pytest.raises((UnsupportedOpError, McuforgeError), match="batch"):
        from_torch(ResidualConcatNet(), torch.randn(2, 3, 16, 16))


def test_in_place_modules_export_as_their_functional_ops():
    """torchvision builds MobileNetV3 with inplace=True modules (hardswish_, relu_, dropout_ in the
    exported graph): each is its functional op when nothing reads the overwritten value later."""
    module = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4),
                           nn.Hardswish(inplace=True), nn.Conv2d(4, 4, 1), nn.ReLU(inplace=True),
                           nn.Flatten(), nn.Dropout(0.2, inplace=True), nn.Linear(4 * 4 * 4, 3),
                           nn.Hardsigmoid(inplace=True)).eval()
    x = torch.randn(1, 3, 6, 6)
    graph = from_torch(module, x)
    assert [op.kind for op in graph.ops] == [OpKind.CONV_2D, OpKind.HARD_SWISH, OpKind.CONV_2D,
                                             OpKind.TRANSPOSE, OpKind.RESHAPE,
                                             OpKind.FULLY_CONNECTED, OpKind.ADD, OpKind.MUL]
    (got,) = evaluate_float(graph, to_ir_layout(graph, x))
    assert np.max(np.abs(got - module(x).detach().numpy())) < 1e-5


def test_in_place_op_on_a_value_read_later_reads_the_result():
    """torch.export makes the reader after an in-place op read its result, so the functional op
    gives torch's value."""
    class Overwrites(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)

        def forward(self, x):
            y = self.conv(x)
            z = y * 2.0
            F.relu(y, inplace=True)  # y + z below adds the rectified y
            return y + z

    module = Overwrites().eval()
    x = torch.randn(1, 2, 4, 4)
    graph = from_torch(module, x)
    (got,) = evaluate_float(graph, to_ir_layout(graph, x))
    want = module(x).detach().numpy().transpose(0, 2, 3, 1)
    assert np.max(np.abs(got - want)) < 1e-5


def test_a_dead_channel_with_a_bias_keeps_its_bias_in_int32(tmp_path):
    """A channel whose weights are ~0 but whose bias is not (as pretrained mcunet-in3's stem has)
    gets a weight scale large enough for its int32 bias code (TFLite's converter does the same),
    instead of a saturated bias that the C kernel's folded bias overflows."""
    conv = nn.Conv2d(3, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight[2].fill_(1e-12)
        conv.bias.copy_(torch.tensor([0.1, -0.2, -0.5, 0.3]))
    module = nn.Sequential(conv, nn.ReLU6()).eval()
    data = torch.randn(8, 3, 6, 6)
    int8 = from_torch(module, data[:1], calibration=data)
    (op,) = int8.ops
    bias = int8.tensor(op.inputs[2]).data
    assert np.max(np.abs(bias.astype(np.int64))) <= 2 ** 30
    assert bias[2] < 0  # the dead channel's bias survives (it is clamped to 0 by ReLU6 here)
    x = quantize_input(int8, to_ir_layout(int8, data[:1])[0])
    assert_matches_tflm(int8, [x])
    assert differential_run(int8, tmp_path, qemu=False, target="host") == {"host-asan": 0}

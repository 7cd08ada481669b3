"""The generated C of every reference model equals the reference runtime bit for bit: on the host with
AddressSanitizer + UBSan and on Cortex-M7 (mps2-an500) under QEMU. The small models run by default,
the large ones (person detection, VWW, ResNet-8, MCUNet) in the slow suite."""

from __future__ import annotations

import pytest

from codegen_support import HAVE_ARM, differential_run
from conftest import require_reference_file
from mcuforge.frontends.tflite import read_tflite

SMALL = ["tflite_micro/hello_world_int8.tflite", "mlperf_tiny/kws_ref_model.tflite",
         "mlperf_tiny/ad01_int8.tflite", "tflite_micro/micro_speech_quantized.tflite"]
LARGE = ["tflite_micro/person_detect.tflite", "mlperf_tiny/vww_96_int8.tflite",
         "mlperf_tiny/pretrainedResnet_quant.tflite", "tinyengine/vww.tflite",
         "mcunet/mcunet-320kb-1mb_imagenet.tflite"]


def _check(relative: str, tmp_path, target: str = "cortex-m7") -> None:
    graph = read_tflite(require_reference_file(f"models/{relative}"))
    mismatches = differential_run(graph, tmp_path, qemu=HAVE_ARM, count=2, target=target)
    assert mismatches == {name: 0 for name in mismatches}


@pytest.mark.parametrize("relative", SMALL)
def test_small_model_bit_exact(relative, tmp_path):
    _check(relative, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("relative", LARGE)
def test_large_model_bit_exact(relative, tmp_path):
    _check(relative, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("relative", ["mlperf_tiny/kws_ref_model.tflite",
                                      "mlperf_tiny/pretrainedResnet_quant.tflite"])
def test_model_bit_exact_cortex_m4(relative, tmp_path):
    _check(relative, tmp_path, "cortex-m4")

"""``mf_detect`` on its own, against `detect.fixed` on the same int8 head outputs: uniform random
outputs over the whole int8 range (every table entry, saturating exp, boxes clipped at every edge),
a score threshold of 0 (every anchor a candidate, far more than the candidate buffer), all-equal
outputs (every score and box tied), several output scales and zero points; compiled with gcc under
AddressSanitizer and UBSan with a small harness that feeds the packed outputs."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from mcuforge.codegen.targets import HOST_SANITIZE_FLAGS, TARGETS
from mcuforge.detect.c_module import HeadBinding, parse_box_lines, render_module
from mcuforge.detect.fixed import DetectConfig, detect_fixed
from mcuforge.detect.head import YoloHead, YoloOutput

HARNESS = r"""
#include <stdio.h>
#include <stdint.h>
#include "mf_detect.h"
static int8_t packed[PACKED_BYTES];
static void out(const char *text) { fputs(text, stdout); }
int main(int argc, char **argv)
{
    FILE *in = fopen(argv[1], "rb");
    while (fread(packed, 1, sizeof packed, in) == sizeof packed) {
        mf_postprocess(packed, out);
    }
    fclose(in);
    return 0;
}
"""

HEAD = YoloHead((YoloOutput(8, ((12.0, 9.5), (30.0, 41.0)), 3),
                 YoloOutput(16, ((70.0, 50.0), (20.0, 100.0), (400.0, 300.0)), 3)), (40, 56))
QUANT = ((0.09, -7), (0.35, 20))  # the second saturates exp(tw) for large tw


def _c_boxes(tmp_path, config: DetectConfig, packed_outputs: list[list[np.ndarray]]):
    sizes = [int(np.prod(HEAD.output_shape(i))) for i in range(len(HEAD.outputs))]
    binding = HeadBinding(HEAD, ("a", "b"), QUANT, (sizes[1], 0))  # packed in reverse order
    module = render_module(binding, config, "harness")
    for relative, text in module.files.items():
        (tmp_path / relative.split("/")[-1]).write_text(text)
    (tmp_path / "main.c").write_text(HARNESS.replace("PACKED_BYTES", str(sum(sizes))))
    compiler = shutil.which("gcc")
    if compiler is None:
        pytest.skip("gcc missing")
    subprocess.run([compiler, *TARGETS["host"].cflags, *HOST_SANITIZE_FLAGS, "-Werror", "-I", str(tmp_path),
                    str(tmp_path / "mf_detect.c"), str(tmp_path / "main.c"), "-o", str(tmp_path / "app")],
                   check=True, capture_output=True, text=True)
    data = b"".join(outputs[1].tobytes() + outputs[0].tobytes() for outputs in packed_outputs)
    (tmp_path / "in.bin").write_bytes(data)
    run = subprocess.run([str(tmp_path / "app"), str(tmp_path / "in.bin")], check=True,
                         capture_output=True, text=True)
    return parse_box_lines(run.stdout)


def _random(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=HEAD.output_shape(i), dtype=np.int8) for i in range(2)]


CONFIGS = [DetectConfig(score_threshold=0.0, iou_threshold=0.45, max_candidates=50, max_boxes=20),
           DetectConfig(score_threshold=0.2, iou_threshold=0.0, max_candidates=300, max_boxes=300),
           DetectConfig(score_threshold=0.5, iou_threshold=0.7, class_agnostic=True)]


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_mf_detect_equals_the_fixed_point_decoder(index, tmp_path):
    config = CONFIGS[index]
    cases = [_random(seed) for seed in range(3)]
    cases.append([np.full(HEAD.output_shape(i), 90, np.int8) for i in range(2)])  # every tie
    cases.append([np.full(HEAD.output_shape(i), -128, np.int8) for i in range(2)])
    got = _c_boxes(tmp_path, config, cases)
    assert len(got) == len(cases)
    for outputs, boxes in zip(cases, got):
        want = detect_fixed(outputs, QUANT, HEAD, config)
        assert np.array_equal(boxes, want), (boxes[:4], want[:4])
    assert sum(len(b) for b in got) > 10

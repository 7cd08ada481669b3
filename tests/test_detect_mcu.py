"""Images through a compiled detector project (`detect.mcu.detect_on_target`): the boxes the
runner prints equal the reference decoder's on the same letterboxed, quantised images, and map to
the same image pixels; the host build by default, Cortex-M4 under QEMU (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM
from detect_support import yolo_graph, yolo_head
from mcuforge.codegen.project import compile_model
from mcuforge.detect.c_module import detect_module
from mcuforge.detect.fixed import DetectConfig
from mcuforge.detect.mcu import detect_on_target
from mcuforge.detect.run import detect_image, detect_reference, make_detector, prepare_image
from mcuforge.errors import McuforgeError

CONFIG = DetectConfig(score_threshold=0.3, iou_threshold=0.4)


def _images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(60, 100), (64, 64), (90, 40), (33, 77)]
    images = []
    for index in range(count):
        h, w = sizes[index % len(sizes)]
        yy, xx = np.mgrid[0:h, 0:w]
        image = np.stack([xx * 3 + index * 20, yy * 2, xx + yy], axis=-1) % 256
        image[rng.integers(0, h // 2):, rng.integers(0, w // 2):] = rng.integers(0, 256, 3)
        images.append(image.astype(np.uint8))
    return images


def _check(target: str, tmp_path, count: int) -> None:
    graph, head = yolo_graph(float_io=True, seed=6), yolo_head()
    detector = make_detector(graph, head)
    project = tmp_path / "project"
    compile_model(graph, project, target, measure=target == "host",
                  postprocess=detect_module(graph, head, CONFIG))
    images = _images(count)
    result = detect_on_target(project, detector, images, target)
    assert result.target == target and len(result.fixed) == count
    for image, fixed, boxes in zip(images, result.fixed, result.boxes):
        assert np.array_equal(fixed, detect_reference(detector, prepare_image(detector, image)[0],
                                                      CONFIG))
        assert np.array_equal(boxes, detect_image(detector, image, CONFIG))
    assert sum(len(b) for b in result.boxes) > count


def test_host_project_boxes_equal_the_reference(tmp_path):
    _check("host", tmp_path, 4)


def test_a_project_without_the_module_is_refused(tmp_path):
    graph, head = yolo_graph(), yolo_head()
    compile_model(graph, tmp_path / "plain", "host", measure=False)
    with pytest.raises(McuforgeError, match="without the detection module"):
        detect_on_target(tmp_path / "plain", make_detector(graph, head), _images(1), "host")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc or qemu-system-arm missing")
def test_cortex_m4_project_boxes_equal_the_reference(tmp_path):
    _check("cortex-m4", tmp_path, 6)


def test_patch_based_project_gives_the_same_boxes(tmp_path):
    from mcuforge.codegen.patch_emit import resolve_c_patch

    graph, head = yolo_graph(input_size=(128, 128), seed=8), yolo_head(input_size=(128, 128))
    schedule = resolve_c_patch(graph, "2x2@down4")
    report = compile_model(graph, tmp_path / "patched", "host", patch=schedule,
                           postprocess=detect_module(graph, head, CONFIG))
    assert report["peak_activation_bytes"] < report["layer_peak_activation_bytes"]
    detector = make_detector(graph, head)
    images = _images(2, seed=3)
    result = detect_on_target(tmp_path / "patched", detector, images, "host")
    for image, boxes in zip(images, result.boxes):
        assert np.array_equal(boxes, detect_image(detector, image, CONFIG)) and len(boxes)

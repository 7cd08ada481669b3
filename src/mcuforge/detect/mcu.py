"""Images through a compiled detector project: each image letterboxed and quantised here (as
`run.prepare_image` does for the reference runtime), all of them packed into one ``input.bin``, one
run of the project's runner (the host binary, or the Cortex-M build under QEMU), and the boxes the
runner printed (``mf_detect``'s) read back and mapped to each image's pixels.

The project must have been compiled with the detection module of the same head
(``compile_model(..., postprocess=detect_module(graph, head, config))`` or ``mcuforge compile MODEL
--head head.json``); its report.json names the head outputs it decodes, checked against the
detector's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..codegen.build import build, run_host_console
from ..codegen.qemu import run_qemu
from ..codegen.targets import get_core
from ..errors import McuforgeError
from .c_module import parse_box_lines
from .fixed import fixed_to_float
from .letterbox import boxes_to_image
from .run import Detector, prepare_image


@dataclass(frozen=True)
class McuDetections:
    """What a project's runner returned for a list of images: per image, the fixed-point boxes it
    printed (int64 [N, 6], as `fixed.detect_fixed`) and the float boxes in the image's pixels."""

    fixed: tuple[np.ndarray, ...]
    boxes: tuple[np.ndarray, ...]
    target: str
    console: str


def _project_report(project: Path, detector: Detector) -> dict:
    try:
        report = json.loads((project / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise McuforgeError(f"{project}: not a compiled mcuforge project (no readable report.json)") from None
    post = report.get("postprocess")
    if not post or post.get("name") != "detect":
        raise McuforgeError(f"{project}: compiled without the detection module (compile with --head)")
    if list(post.get("outputs", [])) != list(detector.binding.tensors):
        raise McuforgeError(f"{project}: its detection module decodes {post.get('outputs')}, the "
                            f"detector's head binds {list(detector.binding.tensors)}")
    return report


def detect_on_target(project: Path, detector: Detector, images: Sequence[np.ndarray],
                     target_name: str = "cortex-m4", timeout_s: float = 600) -> McuDetections:
    """Run ``images`` (RGB uint8 [h, w, 3] each) through the ``project`` built for ``target_name``
    (``host``, ``cortex-m4``, ``cortex-m7``; built here if it is not yet) in one run."""
    project = Path(project)
    report = _project_report(project, detector)
    target = get_core(target_name)
    prepared = [prepare_image(detector, image) for image in images]
    packed = b"".join(x.tobytes() for x, _ in prepared)
    output_bytes = int(report["output_bytes"])
    if target.is_cortex_m:
        console = run_qemu(build(project, target.name), target, packed, output_bytes, len(images),
                           timeout_s=timeout_s).console
    else:
        console = run_host_console(build(project, "host"), packed, output_bytes, len(images),
                                   timeout_s=timeout_s)[1]
    fixed = parse_box_lines(console)
    if len(fixed) != len(images):
        raise McuforgeError(f"{project}: the runner printed boxes for {len(fixed)} of "
                            f"{len(images)} images")
    boxes = tuple(boxes_to_image(fixed_to_float(f), letterbox)
                  for f, (_, letterbox) in zip(fixed, prepared))
    return McuDetections(tuple(fixed), boxes, target.name, console)

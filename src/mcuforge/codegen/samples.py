"""Real sample inputs of the reference models, for `verify` (beside random and extreme inputs).

- person_detect.tflite: the 96x96 8-bit grayscale ``person.bmp`` and ``no_person.bmp`` of the TFLite
  Micro example, fed as TFLite Micro's example does (pixel - 128).
- ad01_int8.tflite: the first 5-slice window (640 log-mel values) of the MLPerf Tiny anomaly-detection
  sample, quantised with the model's input scale and zero point.
Models without a known sample get none.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..ir import Graph


def read_gray_bmp(path: Path) -> np.ndarray:
    """An uncompressed 8-bit BMP as a (height, width) uint8 array, top row first."""
    blob = path.read_bytes()
    data_offset = struct.unpack_from("<I", blob, 10)[0]
    width, height = struct.unpack_from("<ii", blob, 18)
    bits = struct.unpack_from("<H", blob, 28)[0]
    if bits != 8:
        raise ValueError(f"{path}: {bits}-bit BMP, expected 8-bit")
    stride = (width + 3) & ~3
    rows = np.frombuffer(blob, dtype=np.uint8, count=stride * abs(height), offset=data_offset)
    image = rows.reshape(abs(height), stride)[:, :width]
    return image[::-1] if height > 0 else image


def sample_inputs(source: str, graph: Graph) -> list[tuple[str, list[np.ndarray]]]:
    """(label, inputs) pairs of the real samples known for the model at ``source``."""
    path = Path(source)
    name = path.name
    if len(graph.inputs) != 1:
        return []
    tensor = graph.tensors[graph.inputs[0]]
    samples: list[tuple[str, list[np.ndarray]]] = []
    if name == "person_detect.tflite":
        for image_name in ("person.bmp", "no_person.bmp"):
            image_path = path.parent / image_name
            if image_path.exists():
                pixels = read_gray_bmp(image_path).astype(np.int16) - 128
                samples.append((image_name, [pixels.astype(np.int8).reshape(tensor.shape)]))
    elif name == "ad01_int8.tflite":
        data_path = path.parent / "normal_id_01_00000000_hist_librosa.bin"
        if data_path.exists():
            values = np.fromfile(data_path, dtype="<f4")[:640]
            scale, zero_point = tensor.quant.scale[0], tensor.quant.zero_point[0]
            q = np.clip(np.round(values / np.float32(scale)) + zero_point, -128, 127)
            samples.append((data_path.name + " window 0", [q.astype(np.int8).reshape(tensor.shape)]))
    return samples

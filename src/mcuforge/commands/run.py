"""`mcuforge run MODEL.tflite --input X.npy --output Y.npy`: the int8 reference runtime.

Reads the model, checks every input array against the graph's inputs (shape and dtype must match
exactly: the runtime never casts silently), runs the bit-exact reference interpreter and writes the
output atomically: one output as ``.npy``; several outputs as ``.npz`` keyed by tensor name.
"""

from __future__ import annotations

import io
from pathlib import Path

import click
import numpy as np

from ..atomic import write_bytes_atomic
from ..errors import McuforgeError, ModelFileError
from ..frontends.tflite import read_tflite
from ..ops.support import require_executable
from ..runtime.reference import Interpreter, RuntimeInputError


def load_input_array(path: Path) -> np.ndarray:
    """The array stored in the .npy file ``path``; a clear error when it is missing or not .npy."""
    if not path.exists():
        raise RuntimeInputError(f"{path}: no such input file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RuntimeInputError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise RuntimeInputError(f"{path}: holds several arrays (.npz); give one .npy per input")
    return array


def write_outputs_atomically(path: Path, names: list[str], arrays: list[np.ndarray]) -> None:
    """Write one array as .npy or several as .npz (by tensor name) via a temporary file and
    ``os.replace``, so a failed run never leaves a partial file."""
    buffer = io.BytesIO()
    if len(arrays) == 1:
        np.save(buffer, arrays[0], allow_pickle=False)
    else:
        np.savez(buffer, **{name: array for name, array in zip(names, arrays)})
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise McuforgeError(f"{path}: folder {directory} does not exist")
    write_bytes_atomic(path, buffer.getvalue())


@click.command("run")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input", "input_paths", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A .npy array per graph input, in order (repeat for several inputs).")
@click.option("--output", "output_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the output (.npy; .npz when the model has several outputs).")
def command(model: Path, input_paths: tuple[Path, ...], output_path: Path) -> None:
    """Run MODEL.tflite on the given inputs with the bit-exact int8 reference runtime."""
    if model.suffix.lower() != ".tflite":
        raise ModelFileError(f"{model}: `run` takes a .tflite model")
    graph = require_executable(read_tflite(model), str(model), c_code=False)
    interpreter = Interpreter(graph)
    specs = interpreter.input_specs()
    if len(input_paths) != len(specs):
        expected = ", ".join(f"{name} {list(shape)} {dtype}" for name, shape, dtype in specs)
        raise RuntimeInputError(f"{model.name} takes {len(specs)} input(s) ({expected}); "
                                f"got {len(input_paths)} --input file(s)")
    arrays = [load_input_array(path) for path in input_paths]
    for path, array, (name, shape, dtype) in zip(input_paths, arrays, specs):
        if tuple(array.shape) != shape or array.dtype != dtype:
            raise RuntimeInputError(
                f"{path}: {model.name} input {name!r} needs dtype {dtype} and shape {list(shape)}, "
                f"the file holds dtype {array.dtype} and shape {list(array.shape)}")
    outputs = interpreter.invoke(arrays)
    if len(outputs) > 1 and output_path.suffix.lower() != ".npz":
        raise McuforgeError(f"{model.name} has {len(outputs)} outputs: give an .npz --output")
    write_outputs_atomically(output_path, list(graph.outputs), outputs)
    for name, array in zip(graph.outputs, outputs):
        summary = f"{output_path}: {name} {array.dtype} {list(array.shape)}"
        if array.ndim == 2 and array.shape[0] == 1 and array.shape[1] > 1:
            summary += f", argmax {int(np.argmax(array))}"
        click.echo(summary)

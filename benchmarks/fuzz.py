"""Fuzz campaign: mutated copies of the reference .tflite models through read -> validate -> profile
-> reference run, each case in a worker process with a time limit; prints counts per outcome.

    python benchmarks/fuzz.py N [--seed S] [--timeout SECONDS] [--models small|all]
    python benchmarks/fuzz.py --case MODEL:SEED:INDEX     (replay one case, with its traceback)

Mutations (chosen per case from the seed, so every case can be replayed with ``--case``):

- structure: the file truncated at a random length; 1 to 8 random bytes flipped in the flatbuffer;
- semantic, on the decoded records (`RawModel`, what the flatbuffer's tables hold): a dimension, a
  stride, a dilation, a kernel size, a scale, a zero point, a quantized dimension, a buffer index, an
  operator's input/output tensor index (in range, or -1: the decoder refuses the others), an
  option (beta, axis, padding, fused activation), the builtin code, or the subgraph's
  operators/inputs/outputs emptied; values are drawn from the edges (0, -1, 2^31 - 1, -2^63, NaN,
  inf, tiny and huge scales) and from small random changes.

Outcomes: ``ok`` (the pipeline ran), ``refused`` (a `McuforgeError` of one line), ``multiline``
(a refusal over several lines), ``traceback`` (any other exception), ``hang`` (over the time limit),
``crash`` (the worker died: a signal, an out-of-memory kill). Every case that is neither ok nor
refused is listed with its replay key. Exit code 0 when there are none.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import multiprocessing
import random
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SMALL_MODELS = (
    "models/tflite_micro/hello_world_int8.tflite",
    "models/tflite_micro/micro_speech_quantized.tflite",
    "models/mlperf_tiny/kws_ref_model.tflite",
    "models/mlperf_tiny/ad01_int8.tflite",
)
ALL_MODELS = SMALL_MODELS + (
    "models/mlperf_tiny/pretrainedResnet_quant.tflite",
    "models/tflite_micro/person_detect.tflite",
    "models/mlperf_tiny/vww_96_int8.tflite",
    "models/tinyengine/vww.tflite",
)
OUTCOMES = ("ok", "refused", "multiline", "traceback", "hang", "crash")
EDGE_INTS = (0, -1, 1, 2, 3, 7, 255, 256, 65535, 2 ** 31 - 1, -2 ** 31, 2 ** 63 - 1, -2 ** 63)
EDGE_SCALES = (0.0, -1.0, math.nan, math.inf, -math.inf, 1e-45, 1e-30, 1e-12, 1e12, 1e30, 3e38)
OPTION_FIELDS = ("StrideH", "StrideW", "DilationHFactor", "DilationWFactor", "FilterHeight",
                 "FilterWidth", "Padding", "FusedActivationFunction", "Beta", "Axis", "KeepDims",
                 "DepthMultiplier", "KeepNumDims")


@dataclass(frozen=True)
class Case:
    """One fuzz case: a reference model, the campaign seed and the case's index."""

    model: str
    seed: int
    index: int

    @property
    def key(self) -> str:
        """The replay key, ``MODEL:SEED:INDEX``."""
        return f"{self.model}:{self.seed}:{self.index}"


@dataclass(frozen=True)
class Result:
    """What one case did: the outcome, the mutation applied and the message (first 300 chars)."""

    case: Case
    outcome: str
    mutation: str
    message: str


# --- mutations -------------------------------------------------------------------------------

def _edge_or_nudge(rng: random.Random, value: int) -> int:
    if rng.random() < 0.6:
        return rng.choice(EDGE_INTS)
    return value + rng.choice((-2, -1, 1, 2, value, -value))


def _mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if rng.random() < 0.3:
        length = rng.randrange(0, len(data))
        return data[:length], f"truncate to {length} of {len(data)} bytes"
    mutable = bytearray(data)
    flips = []
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(0, len(mutable))
        mutable[position] = rng.randrange(256)
        flips.append(position)
    return bytes(mutable), f"byte flips at {flips}"


def _mutate_raw(rng: random.Random, raw):
    """A semantic edit of a decoded model (`RawModel`); returns (model, description)."""
    from mcuforge.frontends.tflite_decode import RawQuant

    replace = dataclasses.replace
    tensors, operators = list(raw.tensors), list(raw.operators)
    what = rng.choice(("shape", "scale", "zero_point", "quantized_dimension", "buffer", "op_input",
                       "op_output", "option", "builtin_code", "empty"))
    if what == "empty":
        field = rng.choice(("operators", "inputs", "outputs"))
        return replace(raw, **{field: ()}), f"empty subgraph {field}"
    if what in ("op_input", "op_output", "option", "builtin_code") and operators:
        k = rng.randrange(len(operators))
        op = operators[k]
        if what == "option":
            field = rng.choice(sorted(op.options) or OPTION_FIELDS)
            old = op.options.get(field, 0)
            if isinstance(old, float) or field == "Beta":
                value: object = rng.choice(EDGE_SCALES + (float(old) * 1e6,))
            elif isinstance(old, (list, tuple)):
                value = [_edge_or_nudge(rng, int(v)) for v in old]
            else:
                value = _edge_or_nudge(rng, int(old))
            operators[k] = replace(op, options={**op.options, field: value})
            return replace(raw, operators=tuple(operators)), f"operator #{k} {field} {old!r} -> {value!r}"
        if what == "builtin_code":
            value = rng.randrange(0, 160)
            operators[k] = replace(op, builtin_code=value)
            return replace(raw, operators=tuple(operators)), f"operator #{k} builtin code -> {value}"
        field = "inputs" if what == "op_input" else "outputs"
        indices = list(getattr(op, field)) or [0]
        position = rng.randrange(len(indices))
        # in range or -1 (absent): an index beyond the tensors is refused by the decoder, which
        # the byte flips exercise
        indices[position] = rng.choice((-1, 0, len(tensors) - 1, rng.randrange(len(tensors))))
        operators[k] = replace(op, **{field: tuple(indices)})
        return (replace(raw, operators=tuple(operators)),
                f"operator #{k} {field}[{position}] -> {indices[position]}")
    k = rng.randrange(len(tensors))
    tensor = tensors[k]
    if what == "shape" and tensor.shape:
        shape = list(tensor.shape)
        axis = rng.randrange(len(shape))
        shape[axis] = _edge_or_nudge(rng, shape[axis])
        tensors[k] = replace(tensor, shape=tuple(shape))
        description = f"tensor #{k} shape[{axis}] -> {shape[axis]}"
    elif what == "buffer":
        value = rng.choice((0, len(raw.buffers) - 1, rng.randrange(len(raw.buffers))))
        tensors[k] = replace(tensor, buffer=value)
        description = f"tensor #{k} buffer -> {value}"
    elif tensor.quant is not None and tensor.quant.scale:
        quant = tensor.quant
        if what == "scale":
            scales = list(quant.scale)
            i = rng.randrange(len(scales))
            scales[i] = rng.choice(EDGE_SCALES) if rng.random() < 0.7 else scales[i] * 2 ** rng.randint(-40, 40)
            quant = replace(quant, scale=tuple(scales))
            description = f"tensor #{k} scale[{i}] -> {scales[i]!r}"
        elif what == "zero_point":
            points = list(quant.zero_point) or [0]
            i = rng.randrange(len(points))
            points[i] = rng.choice((-129, 128, 300, -2 ** 63, 2 ** 31 - 1, rng.randint(-200, 200)))
            quant = replace(quant, zero_point=tuple(points))
            description = f"tensor #{k} zero_point[{i}] -> {points[i]}"
        else:
            value = rng.choice((-1, 1, 3, 5, 2 ** 31 - 1))
            quant = RawQuant(quant.scale, quant.zero_point, value)
            description = f"tensor #{k} quantized_dimension -> {value}"
        tensors[k] = replace(tensor, quant=quant)
    else:
        return _mutate_raw(rng, raw)
    return replace(raw, tensors=tuple(tensors)), description


# --- the pipeline ----------------------------------------------------------------------------

def _pipeline(case: Case, reference: str | None, mutation: list[str]):
    """Mutate the case's model and run it: read, validate, profile, reference run. Returns the
    graph; ``mutation`` receives the description of the edit (kept when this raises)."""
    import numpy as np

    from mcuforge.analysis.cost import graph_cost
    from mcuforge.analysis.profile import profile_graph
    from mcuforge.frontends.tflite import graph_from_raw
    from mcuforge.frontends.tflite_decode import decode_model
    from mcuforge.reference import reference_dir
    from mcuforge.runtime.reference import Interpreter

    path = (Path(reference) if reference else reference_dir()) / case.model
    rng = random.Random(f"{case.seed}:{case.model}:{case.index}")
    data = path.read_bytes()
    if rng.random() < 0.35:
        data, description = _mutate_bytes(rng, data)
        mutation.append(description)
        raw = decode_model(data, path.name)
    else:
        raw, description = _mutate_raw(rng, decode_model(data, path.name))
        mutation.append(description)
    graph = graph_from_raw(raw, name=path.stem, source=path.name)
    graph_cost(graph)
    profile_graph(graph)
    interpreter = Interpreter(graph)
    inputs = []
    for _, shape, dtype in interpreter.input_specs():
        values = np.random.default_rng(case.index)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            inputs.append(values.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype))
        else:
            inputs.append(values.standard_normal(shape).astype(dtype))
    interpreter.invoke(inputs)
    return graph


def run_case(case: Case, reference: str | None = None) -> tuple[str, str, str]:
    """Mutate and run one case in this process; returns (outcome, mutation, message). Outcomes here
    are ok, refused, multiline or traceback (hangs and crashes are seen by `CaseRunner`)."""
    from mcuforge.errors import McuforgeError

    mutation: list[str] = []
    try:
        _pipeline(case, reference, mutation)
    except McuforgeError as exc:
        message = str(exc)
        outcome = "multiline" if "\n" in message.strip() else "refused"
        return outcome, "; ".join(mutation) or "?", message
    except Exception:  # what the campaign is looking for
        return "traceback", "; ".join(mutation) or "?", traceback.format_exc()
    return "ok", "; ".join(mutation), ""


def survivor_graph(case: Case, reference: str | None = None):
    """(graph, mutation) of a case that runs through the whole pipeline, or (None, mutation) when it
    is refused; used to take survivors on to compile and verify."""
    from mcuforge.errors import McuforgeError

    mutation: list[str] = []
    try:
        return _pipeline(case, reference, mutation), "; ".join(mutation)
    except McuforgeError:
        return None, "; ".join(mutation)


def _worker(connection, reference: str | None) -> None:
    """Worker process: run the cases sent on ``connection`` until it sends None."""
    while True:
        case = connection.recv()
        if case is None:
            return
        try:
            connection.send(run_case(case, reference))
        except Exception:  # a failure outside the pipeline (the mutation itself): still reported
            connection.send(("traceback", "?", traceback.format_exc()))


class CaseRunner:
    """Runs cases in one worker process at a time, restarting it after a hang or a crash."""

    def __init__(self, timeout_s: float, reference: str | None = None):
        self.timeout_s = timeout_s
        self.reference = reference
        self.context = multiprocessing.get_context("spawn")
        self.process = None
        self.connection = None

    def _start(self) -> None:
        parent_end, child_end = self.context.Pipe()
        self.process = self.context.Process(target=_worker, args=(child_end, self.reference),
                                            daemon=True)
        self.process.start()
        child_end.close()
        self.connection = parent_end

    def _stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
        self.process = None

    def run(self, case: Case) -> Result:
        """Run ``case`` in the worker; a case over the time limit is a hang, a dead worker a crash."""
        if self.process is None or not self.process.is_alive():
            self._start()
        self.connection.send(case)
        try:
            ready = self.connection.poll(self.timeout_s)
        except (EOFError, OSError):
            ready = True
        if not ready:
            self._stop()
            return Result(case, "hang", "?", f"no result in {self.timeout_s:g} s")
        try:
            outcome, mutation, message = self.connection.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            code = self.process.exitcode
            self._stop()
            return Result(case, "crash", "?", f"worker died (exit code {code})")
        return Result(case, outcome, mutation, message[:2000])

    def close(self) -> None:
        """End the worker."""
        if self.process is not None and self.process.is_alive():
            self.connection.send(None)
            self.process.join(timeout=5)
        self._stop()


def make_cases(count: int, seed: int, models: tuple[str, ...]) -> list[Case]:
    """``count`` cases spread evenly over ``models``."""
    return [Case(models[i % len(models)], seed, i) for i in range(count)]


def run_campaign(cases: list[Case], timeout_s: float, reference: str | None = None,
                 progress: bool = False) -> list[Result]:
    """Run every case (see `CaseRunner`); returns one result per case."""
    runner = CaseRunner(timeout_s, reference)
    results = []
    try:
        for number, case in enumerate(cases, 1):
            results.append(runner.run(case))
            if progress and number % 500 == 0:
                counts = Counter(r.outcome for r in results)
                print(f"... {number} cases: {dict(counts)}", file=sys.stderr, flush=True)
    finally:
        runner.close()
    return results


def summarize(results: list[Result]) -> str:
    """The counts per outcome and every case that is neither ok nor refused."""
    counts = Counter(r.outcome for r in results)
    lines = [f"{len(results)} cases: " + ", ".join(f"{name} {counts.get(name, 0)}" for name in OUTCOMES)]
    for result in results:
        if result.outcome not in ("ok", "refused"):
            last = result.message.strip().splitlines()[-1] if result.message.strip() else ""
            lines.append(f"  {result.outcome:<9} {result.case.key}  [{result.mutation}]  {last}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run N cases and print the counts (exit code 1 when any case is bad)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    parser.add_argument("--models", choices=("small", "all"), default="all")
    parser.add_argument("--case", help="replay one case MODEL:SEED:INDEX in this process")
    parser.add_argument("--show-refusals", type=int, default=0, help="print N sample refusals")
    args = parser.parse_args(argv)
    if args.case:
        model, seed, index = args.case.rsplit(":", 2)
        outcome, mutation, message = run_case(Case(model, int(seed), int(index)))
        print(f"{outcome} [{mutation}]\n{message}")
        return 0 if outcome in ("ok", "refused") else 1
    for module in ("mcuforge.analysis.profile", "mcuforge.frontends.tflite",
                   "mcuforge.runtime.reference"):
        importlib.import_module(module)  # fail here, once, when the tree does not import

    models = SMALL_MODELS if args.models == "small" else ALL_MODELS
    started = time.monotonic()
    results = run_campaign(make_cases(args.count, args.seed, models), args.timeout, progress=True)
    print(summarize(results))
    refusals = [r for r in results if r.outcome == "refused"]
    for result in refusals[:args.show_refusals]:
        print(f"  refused   [{result.mutation}]  {result.message}")
    print(f"{time.monotonic() - started:.0f} s")
    return 0 if all(r.outcome in ("ok", "refused") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

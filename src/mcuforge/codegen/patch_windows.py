"""The windows of one op of one patch, for the generated C of a patch schedule (`patch_emit`).

Each op of each patch is lowered on a one-op graph whose tensors have that patch's window shapes and
whose op has that patch's per-edge padding (`runtime.patch.cropped_op`); each window is anchored in
the buffer holding it (the network input, a patch-local tensor or the split tensor) with the bytes
between two of its rows (its row pitch) where it is narrower than that buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..analysis.receptive import Interval
from ..ir import Graph, Op, Tensor
from ..runtime.patch import cropped_op


def _key(op: Op, patch: int, role: str) -> str:
    return f"{op.name}@p{patch}:{role}"


@dataclass(frozen=True)
class PatchOp:
    """One op of one patch: its lowering graph and op, where its tensors start in the arena
    (relative to the stage input, to a patch-local tensor or to the split tensor), and the row
    pitch of each of its windows that is narrower than the buffer holding it."""

    graph: Graph
    op: Op
    anchors: dict  # local key -> ("input" | "local" | "split", tensor name, byte offset inside it)
    pitches: dict  # local key -> bytes between the starts of two rows (absent: dense)

    def span_bytes(self, key: str) -> int:
        """Bytes from the first to the last byte of window ``key`` in its buffer."""
        tensor = self.graph.tensor(key)
        if key not in self.pitches or not tensor.shape[1]:
            return tensor.nbytes
        return (tensor.shape[1] - 1) * self.pitches[key] + tensor.nbytes // tensor.shape[1]


def _window(key: str, tensor: Tensor, rows, cols, buffer_rows, buffer_cols, where: str
            ) -> tuple[Tensor, tuple[str, str, int], int]:
    """The local tensor of a window (``rows`` x ``cols`` of ``tensor``, inside a buffer holding
    ``buffer_rows`` x ``buffer_cols``), its anchor and its row pitch in bytes."""
    pixel = tensor.nbytes // (tensor.shape[1] * tensor.shape[2])
    pitch = buffer_cols.size * pixel
    offset = (rows.start - buffer_rows.start) * pitch + (cols.start - buffer_cols.start) * pixel
    local = Tensor(key, (1, rows.size, cols.size, tensor.shape[3]), tensor.dtype, tensor.quant)
    return local, (where, tensor.name, offset), pitch


def patch_op(graph: Graph, op: Op, patch: int, row, col, stage) -> PatchOp:
    """``op`` on the windows of patch ``(row, col)``: it reads the network input in place, its
    stage inputs inside their patch buffers, and writes its fresh region at the top of its buffer
    (below the cached rows) or its tile straight into the split tensor."""
    tensors: dict[str, Tensor] = {}
    anchors: dict[str, tuple[str, str, int]] = {}
    pitches: dict[str, int] = {}
    inputs = []
    reads = iter(zip(row.reads[op.name], col.reads[op.name]))
    for k, name in enumerate(op.inputs):
        source = graph.tensor(name)
        if not graph.is_activation(name):
            tensors[name] = source
            inputs.append(name)
            continue
        r_read, c_read = next(reads)
        key = _key(op, patch, f"in{k}")
        if name == stage.input:
            buffer_rows, buffer_cols = Interval(0, source.shape[1]), Interval(0, source.shape[2])
        else:
            buffer_rows, buffer_cols = row.buffers[name], col.buffers[name]
        tensors[key], anchors[key], pitches[key] = _window(
            key, source, r_read.interval, c_read.interval, buffer_rows, buffer_cols,
            "input" if name == stage.input else "local")
        inputs.append(key)
    out = graph.tensor(op.outputs[0])
    out_key = _key(op, patch, "out")
    if out.name == stage.split:
        buffer_rows, buffer_cols, where = Interval(0, out.shape[1]), Interval(0, out.shape[2]), "split"
    else:
        buffer_rows, buffer_cols, where = row.buffers[out.name], col.buffers[out.name], "local"
    tensors[out_key], anchors[out_key], pitches[out_key] = _window(
        out_key, out, row.fresh[out.name], col.fresh[out.name], buffer_rows, buffer_cols, where)
    local_op = replace(cropped_op(op, row.reads[op.name], col.reads[op.name]),
                       inputs=tuple(inputs), outputs=(out_key,))
    local = Graph(f"{graph.name}:{out_key}", tensors, (local_op,), tuple(k for k in inputs
                                                                        if k in anchors), (out_key,))
    narrower = {key: pitch for key, pitch in pitches.items() if local.tensor(key).nbytes
                and pitch != local.tensor(key).nbytes // local.tensor(key).shape[1]}
    return PatchOp(local, local_op, anchors, narrower)

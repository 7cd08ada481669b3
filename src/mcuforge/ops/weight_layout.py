"""Weight arrays of the convolution and fully connected lowerings, laid out in Flash in the order the
generated kernels read them: plain int8 (or packed int4) rows, and the channel-pair layout of the
SXTB16 cores (`mf_gemm_q15_pairs`, `mf_gemm_pairs_1row` in codegen/templates/kernels/mf_gemm.h.j2),
permuted here at generation time so that no kernel reorders weights at run time."""

from __future__ import annotations

import numpy as np

from ..arith.int4 import pack_int4
from .lowering_types import ConstArray, c_ident


def weight_array(index: int, values: np.ndarray, int4: bool) -> ConstArray:
    """The weights as a const int8 array: one value per byte, or with ``int4`` two values per byte
    (low nibble first, in the order of ``values`` flattened)."""
    if int4:
        return ConstArray(c_ident(index, "w"), "int8_t", np.frombuffer(pack_int4(values), np.int8))
    return ConstArray(c_ident(index, "w"), "int8_t", values.astype(np.int8))


def interleave_channel_pairs(flat: np.ndarray) -> np.ndarray:
    """The [C_out][K] int8 weights in the order `mf_gemm_q15_pairs` (mf_gemm.h) reads them: channel
    pairs (a, b) one after the other (an odd C_out gets a zero last channel), each pair per four
    taps k..k+3 as a_k b_k a_k+2 b_k+2 a_k+1 b_k+1 a_k+3 b_k+3 (SXTB16 of a word gives a's two taps,
    SXTB16 ROR 8 b's, in the lane order of the expanded input), then the K mod 4 tail as a_k b_k."""
    cout, k = flat.shape
    padded = np.zeros((cout + cout % 2, k), dtype=np.int8)
    padded[:cout] = flat
    pairs = padded.reshape(-1, 2, k)                        # [pair][a|b][K]
    body = k - k % 4
    groups = pairs[:, :, :body].reshape(len(pairs), 2, -1, 4)[:, :, :, [0, 2, 1, 3]]
    body_bytes = groups.transpose(0, 2, 3, 1).reshape(len(pairs), -1)   # [pair][group][tap][a|b]
    tail_bytes = pairs[:, :, body:].transpose(0, 2, 1).reshape(len(pairs), -1)
    return np.concatenate([body_bytes, tail_bytes], axis=1).reshape(-1)

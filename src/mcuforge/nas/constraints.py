"""The hard constraints of the search: peak SRAM, Flash and latency of a candidate spec.

SRAM is the planner's figure: the analytic peak activation memory (which the arena planner reaches;
int8, in-place depthwise, network input counted) plus ``sram_reserve_bytes`` for what the generated
program needs besides the activation arena (kernel scratch, stack, runtime data). With ``patch`` on and
a layer-based peak over the limit, the candidate is paired with the best patch schedule the patch
planner finds under the limit (MCUNetV2's joint search): it fits when that schedule's peak does.
Flash is estimated for mcuforge's generated C: the weights, 16 B of per-channel constants per output
channel of every weighted layer (bias, multiplier, shift and the rounding constant of the fast
requantisation path), ``flash_code_base_bytes`` of runtime and ``flash_code_bytes_per_kernel`` per
distinct specialised kernel (1x1 conv, depthwise, other): by default 6 kB of runtime (start-up,
`mcuforge_invoke`, the runner) and 2 kB per 1x1 kernel, 1.375 kB per depthwise kernel and 0.5 kB per
other kernel. The constants are rounded from the symbol sizes of Cortex-M4 builds of the generated C
(person_detect.tflite, 2026-12: 1x1 kernels 1.3-2.4 kB, most near 2.0 kB; depthwise 0.75-0.96 kB;
pooling, softmax and plain convs 0.3-0.7 kB; `mcuforge_invoke` 2.0 kB and the start-up and
semihosting code 1.3 kB), leaning to the larger side; the code generator's kernels change size
between versions, so the search also compiles its winner and checks the measured figures
(`winner.verify_on_device_build`).
Latency (optional) comes from `nas.latency`, scaled by the MACs of the patch schedule (halo
recomputation) when the candidate needs one.

Layer-based figures come from the closed form in `fast_profile` (under a millisecond); only
candidates that need a patch schedule or a latency estimate are built as IR graphs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

from ..analysis.cost import REQUANT_BYTES_PER_CHANNEL
from ..errors import McuforgeError
from ..models.dsl import NetSpec
from ..models.spec_graph import build_graph
from ..targets import Board
from .fast_profile import spec_figures
from .latency import LatencyModel

DEFAULT_SRAM_RESERVE_BYTES = 6 * 1024
FLASH_CODE_BASE_BYTES = 6 * 1024
# Code bytes per specialised kernel: (1x1 conv, depthwise, any other kind).
FLASH_CODE_BYTES_PER_KERNEL = (2048, 1408, 512)
CHANNEL_CONSTANT_BYTES = 16
PATCH_HALO_MODES = ("none",)
PATCH_MAX_GRID = 4


@dataclass(frozen=True)
class Constraints:
    """Limits a candidate must meet (bytes; 1 kB = 1024 B)."""

    sram_bytes: int
    flash_bytes: int
    latency_ms: float | None = None
    patch: bool = False
    sram_reserve_bytes: int = DEFAULT_SRAM_RESERVE_BYTES
    flash_code_base_bytes: int = FLASH_CODE_BASE_BYTES
    flash_code_bytes_per_kernel: tuple[int, int, int] = FLASH_CODE_BYTES_PER_KERNEL

    @property
    def activation_budget_bytes(self) -> int:
        """What the activations may use: the SRAM limit less the reserve."""
        return self.sram_bytes - self.sram_reserve_bytes

    def estimated_flash_bytes(self, figures) -> int:
        """The generated program's Flash for a network with these `fast_profile.SpecFigures`."""
        weights = figures.flash_bytes - figures.weighted_channels * (4 + REQUANT_BYTES_PER_CHANNEL)
        pointwise, depthwise, other = self.flash_code_bytes_per_kernel
        others = figures.kernels - figures.pointwise_kernels - figures.depthwise_kernels
        code = (self.flash_code_base_bytes + figures.pointwise_kernels * pointwise
                + figures.depthwise_kernels * depthwise + others * other)
        return weights + figures.weighted_channels * CHANNEL_CONSTANT_BYTES + code

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    """A candidate's figures against the constraints."""

    macs: int
    params: int
    flash_bytes: int
    estimated_program_flash_bytes: int
    peak_layer_bytes: int
    peak_sram_bytes: int
    schedule: str
    latency_ms: float | None
    fits: bool
    reason: str
    patch_mac_factor: float = 1.0

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


@lru_cache(maxsize=4096)
def patch_peak(spec: NetSpec, limit_bytes: int) -> tuple[int, str, float] | None:
    """(peak bytes, schedule text, MACs relative to layer-based) of the best patch schedule of ``spec``
    under ``limit_bytes``, or None when none fits. Uses the one ``--patch`` resolver
    (`patch.resolve_schedule`, policy ``auto``: the fewest MACs among the schedules that fit) with
    MCUNetV2's recomputed halos and grids up to 4x4, under the reference conventions the closed-form
    profiler counts (`analysis.conventions.REFERENCE_CONVENTIONS`; a fraction of a second per
    network; results are cached per spec)."""
    from ..analysis.conventions import REFERENCE_CONVENTIONS
    from ..analysis.memory import memory_profile
    from ..errors import DoesNotFitError
    from ..patch import GridFamily, resolve_schedule

    graph = build_graph(spec)
    try:
        plan = resolve_schedule(graph, "auto", REFERENCE_CONVENTIONS, limit_bytes,
                                families=(GridFamily("square", PATCH_HALO_MODES, PATCH_MAX_GRID),))
    except DoesNotFitError:
        return None
    if plan is None:
        return memory_profile(graph, REFERENCE_CONVENTIONS).peak_activation_bytes, "none", 1.0
    return plan.peak_activation_bytes, plan.config.to_string(), plan.total_macs / plan.total_macs_layer


def measure(spec: NetSpec, constraints: Constraints, latency_model: LatencyModel | None = None,
            target: Board | None = None, need_patch_peak: bool = True) -> Measurement:
    """Figures of ``spec`` and whether it meets ``constraints``. With ``need_patch_peak`` False a
    layer-based misfit is reported without asking the patch planner (for quick pre-filtering)."""
    figures = spec_figures(spec)
    budget = constraints.activation_budget_bytes
    peak, schedule, mac_factor = figures.peak_activation_bytes, "layer-based", 1.0
    reasons = []
    program_flash = constraints.estimated_flash_bytes(figures)
    if program_flash > constraints.flash_bytes:
        reasons.append(f"flash {program_flash} > {constraints.flash_bytes}")
    if peak > budget:
        patched = patch_peak(spec, budget) if constraints.patch and need_patch_peak and not reasons else None
        if patched is None:
            reasons.append(f"sram {peak} > {budget}")
        else:
            peak, schedule, mac_factor = patched
    latency = None
    if constraints.latency_ms is not None and not reasons:
        if latency_model is None or target is None:
            raise McuforgeError("a latency limit needs a latency model and a target")
        # A patch schedule recomputes the halos: its latency grows with its MACs.
        latency = latency_model.latency_ms(build_graph(spec), target) * mac_factor
        if latency > constraints.latency_ms:
            reasons.append(f"latency {latency:.1f} ms > {constraints.latency_ms} ms")
    return Measurement(figures.macs, figures.params, figures.flash_bytes, program_flash, figures.peak_activation_bytes,
                       peak, schedule, latency, not reasons, "; ".join(reasons), mac_factor)

"""Kernel specialisations: which C function a layer calls, and the source of that function.

A `KernelSpec` names one specialised kernel (for example ``mf_dw_3x3_s1_dm1_fast``): its jinja2
template, the template's compile-time constants (kernel size, stride, channel counts, requantisation
form, overlap variant) and the C parameter list of the runtime arguments. Layers that need the same
specialisation share one function; only the specialisations a model uses are emitted, each in its own
``kernels/<name>.c``. `KernelSpec` itself is a plain type of `mcuforge.ops.lowering_types` (the op
modules build them); the templates stay here, under ``codegen/templates/kernels``, beside the
shared headers (``mf_common.h``, ``mf_gemm.h``) they include.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

from ..ops.lowering_types import REQUANT_PARAMS, KernelSpec

__all__ = ["REQUANT_PARAMS", "KernelSpec", "render_kernel", "render_template", "template_environment"]


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The jinja2 environment over ``codegen/templates`` (strict about undefined variables)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mcuforge.codegen", "templates"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


def render_template(path: str, **context: Any) -> str:
    """Render ``templates/<path>`` with ``context``."""
    return template_environment().get_template(path).render(**context)


def render_kernel(spec: KernelSpec) -> str:
    """The C source of one specialised kernel."""
    return render_template(f"kernels/{spec.template}.c.j2", name=spec.name,
                           prototype=spec.prototype, **dict(spec.constants))

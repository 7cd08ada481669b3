"""Kernel specialisations: which C function a layer calls, and the source of that function.

A `KernelSpec` names one specialised kernel (for example ``mf_dw_3x3_s1_dm1_fast``): its jinja2
template, the template's compile-time constants (kernel size, stride, channel counts, requantisation
form, overlap variant) and the C parameter list of the runtime arguments. Layers that need the same
specialisation share one function; only the specialisations a model uses are emitted, each in its own
``kernels/<name>.c``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import jinja2


@dataclass(frozen=True)
class KernelSpec:
    """One specialised kernel function. ``params`` is the C parameter list (without parentheses);
    ``constants`` are the values the template bakes in."""

    name: str
    template: str
    params: str
    constants: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def prototype(self) -> str:
        """The C function header."""
        return f"void {self.name}({self.params})"


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


# Parameter lists shared by the kernel families (the argument order of `lowering` follows them).
REQUANT_PARAMS = ("const int8_t *w, const int32_t *bias, const int32_t *mult, const int32_t *shift, "
                  "const int32_t *round, int32_t out_zp, int32_t act_min, int32_t act_max")

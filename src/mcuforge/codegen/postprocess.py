"""Post-processing modules: C that a project's runners apply to every inference's outputs.

A module (e.g. detection decoding and NMS, `mcuforge.detect.c_module`) is a few files under
``postprocess/`` in the project, compiled with the model, whose header declares

    void mf_postprocess(const int8_t *output, void (*write)(const char *text));

``output`` is the packed int8 output buffer of one inference (model.h's layout); the function writes
its result as text through ``write`` (``fputs`` to stdout on the host, semihosting ``SYS_WRITE0``
under QEMU). The model's API and ``output.bin`` are unchanged, so verification and measurement work
as without a module; the measured Flash and stack then include the module. codegen only carries the
files: what they compute is their owner's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from .emit import GeneratedModel, runner_files

POSTPROCESS_FOLDER = "postprocess"


@dataclass(frozen=True)
class PostProcessModule:
    """A post-processing module: its name, its files (paths relative to the project, each under
    ``postprocess/``), the header (relative path) that declares ``mf_postprocess``, and the fields
    it adds to report.json."""

    name: str
    files: Mapping[str, str]
    header: str
    report: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        outside = [path for path in (*self.files, self.header)
                   if not path.startswith(POSTPROCESS_FOLDER + "/")]
        if outside or self.header not in self.files:
            raise ValueError(f"post-processing module {self.name}: files {outside} outside "
                             f"{POSTPROCESS_FOLDER}/, or its header {self.header} is not one of them")


def with_postprocess(model: GeneratedModel, module: PostProcessModule) -> GeneratedModel:
    """``model`` with ``module``'s files added and the runners calling ``mf_postprocess`` after
    every inference."""
    files = dict(model.files)
    files.update(module.files)
    files.update(runner_files(module.header))
    return replace(model, files=files, postprocess=module)

"""The layers of mcuforge, bottom to top: which package may import which.

Every top-level package or module of ``mcuforge`` sits in exactly one layer of `LAYERS`. A module may
import its own package, any package of a lower layer, and a package of its own layer only where that
layer says ``peers_may_import``; an import of a higher layer is a violation. This holds for every
import statement at any depth (module level, inside functions, under ``TYPE_CHECKING``), relative
or absolute. `tests/test_layers.py` parses every module with `ast` and fails naming ``file:line``
for each violation, and fails for a package on disk that no layer names (place it first).

Why this order: integer arithmetic and the IR are what everything else talks in; the per-op homes
(`ops`) need only those; the model description (`models`) builds IR graphs. From `analysis` to
`codegen` every package takes a `Graph` and never reads or writes a model file: `analysis` reasons
about a graph, `planner` lays out its arena and `patch` schedules patch-based inference over it,
the `runtime` executes it, `codegen` lowers it to C and `detect` decodes a detector's outputs
(in numpy and in C) over both. `frontends` (file formats only) sit above
them, so the order itself forbids a planner or a code generator that loads files; `rivals` measure
other systems (TFLite Micro) on the same files. Data sets, then PyTorch quantisation and training,
sit above the runtime they are checked against; `report` draws figures from plain results (NAS
draws with it); `nas` searches with all of them, `pipeline` chains whole jobs, `commands` are the
CLI's subcommands and `cli` gathers them (by name, through importlib). A package listed here need
not exist yet: its layer says where it goes when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One layer: its name, the top-level packages (or modules) of ``mcuforge`` in it, and whether
    those packages may import one another (otherwise each may import only its own package and the
    layers below)."""

    name: str
    packages: frozenset[str]
    peers_may_import: bool = False


def _layer(name: str, *packages: str, peers_may_import: bool = False) -> Layer:
    return Layer(name, frozenset(packages), peers_may_import)


LAYERS: tuple[Layer, ...] = (
    _layer("errors", "errors"),
    _layer("foundation", "atomic", "reference", "targets", "layers"),
    _layer("staged runs", "stages"),
    _layer("arithmetic", "arith"),
    _layer("intermediate representation", "ir"),
    _layer("per-op homes", "ops"),
    _layer("model description", "models"),
    _layer("analysis", "analysis"),
    _layer("arena planning", "planner"),
    _layer("patch-based inference", "patch"),
    _layer("reference runtime", "runtime"),
    _layer("code generation", "codegen"),
    _layer("detection post-processing", "detect"),
    _layer("model files", "frontends"),
    _layer("rival measurements", "rivals"),
    _layer("data sets", "data"),
    _layer("quantisation and training", "quant", "train"),
    _layer("reports", "report"),
    _layer("architecture search", "nas"),
    _layer("end-to-end jobs", "pipeline"),
    _layer("subcommands", "commands"),
    _layer("command line", "cli"),
    _layer("entry point", "__main__"),
)


# What the root package ``mcuforge/__init__.py`` may import: besides the version it only loads the
# per-op homes, so that every op kind is registered with the IR whichever module is imported first.
ROOT_PACKAGE_IMPORTS: frozenset[str] = frozenset({"ops"})


def layer_index(package: str) -> int:
    """Position of ``package``'s layer in `LAYERS` (0 = bottom); KeyError when no layer names it."""
    for index, layer in enumerate(LAYERS):
        if package in layer.packages:
            return index
    raise KeyError(f"no layer of mcuforge.layers names the package {package!r}")


def may_import(importer: str, imported: str) -> bool:
    """True when a module of top-level package ``importer`` may import top-level package
    ``imported`` (both names as in `Layer.packages`, or ``"mcuforge"`` for the root package: anyone
    may import it, and it may import only `ROOT_PACKAGE_IMPORTS`)."""
    if importer == imported or imported == "mcuforge":
        return True
    if importer == "mcuforge":
        return imported in ROOT_PACKAGE_IMPORTS
    importer_layer, imported_layer = layer_index(importer), layer_index(imported)
    if importer_layer == imported_layer:
        return LAYERS[importer_layer].peers_may_import
    return imported_layer < importer_layer

"""docs/architecture.md and the README's layout section follow the code: the import order the doc lists
is `mcuforge.layers.LAYERS`, and both name every package on disk."""

from __future__ import annotations

import re
from pathlib import Path

from mcuforge.layers import LAYERS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOT = PROJECT_ROOT / "src" / "mcuforge"
ARCHITECTURE = (PROJECT_ROOT / "docs" / "architecture.md").read_text()


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _packages_on_disk() -> set[str]:
    packages = {path.parent.name for path in SOURCE_ROOT.glob("*/__init__.py")}
    modules = {path.stem for path in SOURCE_ROOT.glob("*.py") if path.name != "__init__.py"}
    return packages | modules


def test_import_order_in_the_doc_is_the_layers_data():
    numbered = re.findall(r"^\d+\. (.+)$", _section(ARCHITECTURE, "Import direction"), re.MULTILINE)
    listed = [frozenset(re.findall(r"`([a-z_]+)`", line)) for line in numbered]
    assert listed == [layer.packages for layer in LAYERS]


def test_package_map_names_every_package():
    table = _section(ARCHITECTURE, "Packages (`src/mcuforge/`)")
    named = set(re.findall(r"`([a-z_]+)/?`", table))
    assert _packages_on_disk() <= named, sorted(_packages_on_disk() - named)


def test_readme_layout_names_every_package():
    readme = (PROJECT_ROOT / "README.md").read_text()
    layout = _section(readme, "Layout")
    named = set(re.findall(r"`([a-z_]+)/?`", layout))
    missing = _packages_on_disk() - named - {"__main__"}
    assert not missing, sorted(missing)
    assert "docs/architecture.md" in layout and "docs/adding-an-op.md" in layout

"""Detection data on disk: Pascal VOC folders (JPEG/PNG + XML) and CSV box lists.

Pascal VOC folder: annotations in ``Annotations/`` (or ``annotations/``), images in
``JPEGImages/`` (or ``images/``); each XML names its image (``<filename>``) and lists objects
(``<name>``, ``<difficult>``, ``<bndbox>`` xmin ymin xmax ymax). The class list is
``classes.txt`` (one name a line) when the folder has one, else the sorted names found in all
annotations of the folder (so a class keeps its index in every split).

CSV box list (``raccoon_labels.csv`` style): a header ``filename,width,height,class,xmin,ymin,xmax,
ymax`` and one row per box; images are looked up beside the CSV, then in ``../images``.

Splits: ``ImageSets/Main/<split>.txt`` when the VOC folder has it; otherwise **the fixed split of
this module**: the image names (file names) in sorted order, every 5th one (positions 4, 9, 14, ...
counting from 0) is ``val``, the rest ``train``. The raccoon set's 160 images give 128 / 32.

Box coordinates are taken as continuous pixel coordinates in the image (0 <= x0 < x1 <= width).
Images whose longer side exceeds ``max_side`` are shrunk on load (boxes with them; IoUs do not
change). Bad input is a `DatasetError` naming the file: an annotation naming a missing image, a box
outside its image, a file that is not an image, an empty data set.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .detection import DetectionDataset, DetectionSample
from .image_folder import _open_image

SPLITS = ("train", "val")
VAL_EVERY = 5
DEFAULT_MAX_SIDE = 416
CSV_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


def split_names(names: list[str], split: str) -> list[str]:
    """The fixed split (module doc): sorted names, every ``VAL_EVERY``-th one to ``val``."""
    if split not in SPLITS:
        raise DatasetError(f"detection data sets have the splits {', '.join(SPLITS)}, not {split!r}")
    ordered = sorted(names)
    return [name for position, name in enumerate(ordered)
            if (position % VAL_EVERY == VAL_EVERY - 1) == (split == "val")]


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / name for name in names if (root / name).is_dir()), None)


def is_voc_folder(root: Path) -> bool:
    """Whether ``root`` has a VOC annotation folder."""
    return _first_dir(root, ("Annotations", "annotations")) is not None


def _text(element: ET.Element, path: str, source: Path) -> str:
    found = element.find(path)
    if found is None or found.text is None:
        raise DatasetError(f"{source}: no <{path}> in the annotation")
    return found.text.strip()


def _number(element: ET.Element, path: str, source: Path) -> float:
    text = _text(element, path, source)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{source}: <{path}> is {text!r}, not a number") from None


def _parse_voc_xml(path: Path) -> tuple[str, list[tuple[str, list[float], bool]]]:
    """(image file name, [(class name, [x0, y0, x1, y1], difficult)]) of one annotation."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"{path}: not a Pascal VOC annotation ({exc})") from None
    filename = _text(root, "filename", path)
    objects = []
    for obj in root.findall("object"):
        name = _text(obj, "name", path)
        box = [_number(obj, f"bndbox/{key}", path) for key in ("xmin", "ymin", "xmax", "ymax")]
        difficult = obj.find("difficult") is not None and _text(obj, "difficult", path) not in ("0", "")
        objects.append((name, box, difficult))
    return filename, objects


def _check_box(box: list[float], width: int, height: int, where: str) -> None:
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise DatasetError(f"{where}: box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] lies outside the "
                           f"{width}x{height} image (or is empty)")


def _load_sample(image_path: Path, objects: list[tuple[str, list[float], bool]],
                 class_names: list[str], where: str, max_side: int | None) -> DetectionSample:
    """Decode one image, check its boxes against its real size, shrink it to ``max_side``."""
    from PIL import Image

    with _open_image(image_path, decode=True) as image:
        width, height = image.size
        for name, box, _ in objects:
            _check_box(box, width, height, f"{where} ({name})")
        scale = 1.0
        if max_side is not None and max(width, height) > max_side:
            scale = max_side / max(width, height)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    boxes = np.array([box for _, box, _ in objects], dtype=np.float32).reshape(-1, 4)
    if scale != 1.0:
        boxes *= np.array([pixels.shape[1] / width, pixels.shape[0] / height] * 2, dtype=np.float32)
    labels = np.array([class_names.index(name) for name, _, _ in objects], dtype=np.int64)
    difficult = np.array([flag for _, _, flag in objects], dtype=bool)
    return DetectionSample(image_path.name, pixels, boxes, labels, difficult)


def _class_list(root: Path, found: set[str]) -> list[str]:
    listed = root / "classes.txt"
    if listed.is_file():
        names = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
        unknown = sorted(found - set(names))
        if unknown:
            raise DatasetError(f"{listed}: does not list the class {unknown[0]!r} that an annotation names")
        return names
    return sorted(found)


def _split_of_voc(root: Path, names: list[str], split: str) -> list[str]:
    """The annotation stems of ``split``: ImageSets/Main/<split>.txt, else `split_names`."""
    listed = root / "ImageSets" / "Main" / f"{split}.txt"
    if listed.is_file():
        wanted = [line.split()[0] for line in listed.read_text().splitlines() if line.strip()]
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise DatasetError(f"{listed}: names {missing[0]!r}, which has no annotation")
        return wanted
    return split_names(names, split)


def load_voc_folder(root: str | Path, split: str, max_side: int | None = DEFAULT_MAX_SIDE) -> DetectionDataset:
    """The ``split`` of a Pascal VOC folder (module doc)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such data set folder")
    annotations = _first_dir(root, ("Annotations", "annotations"))
    if annotations is None:
        raise DatasetError(f"{root}: no Annotations/ (or annotations/) folder of VOC XML files")
    images = _first_dir(root, ("JPEGImages", "images")) or root
    xml_files = {path.stem: path for path in sorted(annotations.glob("*.xml"))}
    if not xml_files:
        raise DatasetError(f"{annotations}: no annotations (.xml files): the data set is empty")
    parsed = {stem: _parse_voc_xml(path) for stem, path in xml_files.items()}
    class_names = _class_list(root, {name for _, objects in parsed.values() for name, _, _ in objects})
    samples = []
    for stem in _split_of_voc(root, sorted(xml_files), split):
        filename, objects = parsed[stem]
        image_path = images / filename
        if not image_path.is_file():
            raise DatasetError(f"{xml_files[stem]}: names the image {filename}, which is not in {images}")
        samples.append(_load_sample(image_path, objects, class_names, str(xml_files[stem]), max_side))
    if not samples:
        raise DatasetError(f"{root}: no images in the {split} split")
    return DetectionDataset(tuple(samples), tuple(class_names), str(root))


def _csv_rows(path: Path) -> dict[str, list[tuple[int, dict[str, str]]]]:
    """Rows of a box CSV grouped by file name, with their line numbers."""
    try:
        with path.open(newline="") as stream:
            reader = csv.DictReader(stream)
            header = tuple(reader.fieldnames or ())
            if any(column not in header for column in CSV_COLUMNS):
                raise DatasetError(f"{path}: expected the columns {','.join(CSV_COLUMNS)}, got {','.join(header)}")
            grouped: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
            for line, row in enumerate(reader, start=2):
                grouped[row["filename"]].append((line, row))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a text CSV file ({exc})") from None
    return grouped


def load_box_csv(path: str | Path, split: str, image_dir: str | Path | None = None,
                 max_side: int | None = DEFAULT_MAX_SIDE) -> DetectionDataset:
    """The ``split`` of a CSV box list (module doc); ``image_dir`` overrides where images are."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such CSV file")
    grouped = _csv_rows(path)
    if not grouped:
        raise DatasetError(f"{path}: no boxes: the data set is empty")
    folders = [Path(image_dir)] if image_dir is not None else [path.parent, path.parent.parent / "images"]
    class_names = _class_list(path.parent, {row["class"] for rows in grouped.values() for _, row in rows})
    samples = []
    for filename in split_names(list(grouped), split):
        rows = grouped[filename]
        image_path = next((folder / filename for folder in folders if (folder / filename).is_file()), None)
        if image_path is None:
            raise DatasetError(f"{path}:{rows[0][0]}: names the image {filename}, which is not in "
                               f"{' or '.join(str(f) for f in folders)}")
        objects = []
        for line, row in rows:
            try:
                box = [float(row[key]) for key in ("xmin", "ymin", "xmax", "ymax")]
            except (TypeError, ValueError):
                raise DatasetError(f"{path}:{line}: a box coordinate is not a number") from None
            objects.append((row["class"], box, False))
        samples.append(_load_sample(image_path, objects, class_names, f"{path}:{rows[0][0]}", max_side))
    if not samples:
        raise DatasetError(f"{path}: no images in the {split} split")
    return DetectionDataset(tuple(samples), tuple(class_names), str(path))

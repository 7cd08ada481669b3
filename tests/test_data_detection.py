"""Detection data: Pascal VOC and CSV loaders, the fixed split, augmentation that keeps boxes right,
and bad input (one line naming the file, exit code 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import one_error_line, require_reference_file
from mcuforge.cli import main
from mcuforge.data.box_augment import (AugmentSettings, eval_example, letterbox_placement, place_boxes,
                                       train_example)
from mcuforge.data.detection import DetectionSample
from mcuforge.data.registry import load_detection_dataset
from mcuforge.data.voc import load_box_csv, load_voc_folder, split_names
from mcuforge.detect.postprocess import boxes_to_image
from mcuforge.errors import DatasetError

_XML = """<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height></size>
{objects}</annotation>"""
_OBJECT = """<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin>
<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"""


def _voc_folder(root: Path, images: int = 5, box=(4, 6, 30, 20), name: str = "cat") -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for index in range(images):
        Image.new("RGB", (40, 30), (index * 20, 0, 0)).save(root / "JPEGImages" / f"im{index}.png")
        objects = _OBJECT.format(name=name if index % 2 else "dog", difficult=int(index == 3),
                                 x0=box[0], y0=box[1], x1=box[2], y1=box[3])
        (root / "Annotations" / f"im{index}.xml").write_text(
            _XML.format(filename=f"im{index}.png", w=40, h=30, objects=objects))
    return root


def test_voc_folder_loads_classes_boxes_difficult_and_split(tmp_path):
    root = _voc_folder(tmp_path / "voc")
    train, val = load_voc_folder(root, "train"), load_voc_folder(root, "val")
    assert train.class_names == ("cat", "dog")
    assert [s.name for s in val.samples] == ["im4.png"]  # sorted names, every 5th to val
    assert len(train) == 4 and train.samples[3].difficult.tolist() == [True]
    np.testing.assert_array_equal(train.samples[0].boxes, [[4, 6, 30, 20]])
    assert train.samples[0].labels.tolist() == [1] and train.samples[1].labels.tolist() == [0]


def test_split_rule_every_fifth_sorted_name():
    names = [f"n{i:02d}" for i in range(10)]
    assert split_names(list(reversed(names)), "val") == ["n04", "n09"]
    assert len(split_names(names, "train")) == 8


def test_large_images_shrink_with_their_boxes(tmp_path):
    root = _voc_folder(tmp_path / "voc", images=1)
    sample = load_voc_folder(root, "train", max_side=20).samples[0]
    assert sample.size == (15, 20)
    np.testing.assert_allclose(sample.boxes, [[2, 3, 15, 10]])


def test_raccoon_split_and_csv_agree():
    require_reference_file("data/raccoon")
    train, val = load_detection_dataset("raccoon", "train"), load_detection_dataset("raccoon", "val")
    assert (len(train), len(val), train.class_names) == (128, 32, ("raccoon",))
    csv_val = load_detection_dataset(f"csv:{require_reference_file('data/raccoon/data/raccoon_labels.csv')}", "val")
    assert [s.name for s in csv_val.samples] == [s.name for s in val.samples]
    assert csv_val.object_count == val.object_count


def test_csv_loader_reads_rows(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    (tmp_path / "boxes.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                                        "a.jpg,40,30,fox,1,2,10,20\na.jpg,40,30,fox,5,5,39,29\n")
    data = load_box_csv(tmp_path / "boxes.csv", "train")
    assert data.object_count == 2 and data.class_names == ("fox",)


def _error(tmp_path, root: Path, capsys) -> str:
    assert main(["train", "mcunet-in3-yolo", "--task", "detect", "--dataset", f"voc:{root}",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 2
    return one_error_line(capsys)


def test_annotation_naming_a_missing_image(tmp_path, capsys):
    root = _voc_folder(tmp_path / "voc")
    (root / "JPEGImages" / "im2.png").unlink()
    line = _error(tmp_path, root, capsys)
    assert "im2.xml" in line and "im2.png" in line


def test_box_outside_the_image(tmp_path, capsys):
    root = _voc_folder(tmp_path / "voc", box=(4, 6, 41, 20))
    line = _error(tmp_path, root, capsys)
    assert "im0.xml" in line and "outside the 40x30 image" in line


def test_file_that_is_not_an_image(tmp_path, capsys):
    root = _voc_folder(tmp_path / "voc")
    (root / "JPEGImages" / "im1.png").write_text("not a picture")
    line = _error(tmp_path, root, capsys)
    assert "im1.png" in line and "unreadable image" in line


def test_empty_data_set(tmp_path, capsys):
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    line = _error(tmp_path, root, capsys)
    assert "Annotations" in line and "empty" in line


def test_csv_naming_a_missing_image(tmp_path):
    (tmp_path / "boxes.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                                        "gone.jpg,40,30,fox,1,2,10,20\n")
    with pytest.raises(DatasetError, match=r"boxes.csv:2: names the image gone.jpg"):
        load_box_csv(tmp_path / "boxes.csv", "train")


def _rectangle_sample(box=(30, 12, 70, 50), size=(64, 96)) -> DetectionSample:
    image = np.zeros((*size, 3), np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 255
    return DetectionSample("r.png", image, np.array([box], np.float32), np.array([0]), np.array([False]))


@pytest.mark.parametrize("seed", range(6))
def test_augmentation_keeps_the_box_on_the_object(seed):
    sample = _rectangle_sample()
    canvas, boxes, labels = train_example(sample, 64, np.random.default_rng(seed),
                                          AugmentSettings(colour=0.0, min_visible=0.0))
    white = canvas.mean(axis=2) > 200
    ys, xs = np.nonzero(white)
    if len(boxes) == 0:
        assert len(xs) == 0 or (xs.max() - xs.min() < 2 or ys.max() - ys.min() < 2)
        return
    x0, y0, x1, y1 = boxes[0]
    assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() + 1 - x1) <= 1.5
    assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() + 1 - y1) <= 1.5
    assert labels.tolist() == [0]


def test_letterbox_boxes_map_back_to_the_image():
    sample = _rectangle_sample()
    canvas, letterbox = eval_example(sample, 48)
    placed = place_boxes(sample.boxes, letterbox_placement(letterbox), 48)
    back = boxes_to_image(np.concatenate([placed, [[1.0, 0.0]]], axis=1), letterbox)
    np.testing.assert_allclose(back[:, :4], sample.boxes, atol=1e-4)

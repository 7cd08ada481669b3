"""Data sets: loaders for IDX (MNIST, Fashion-MNIST), CIFAR batches, image folders and Speech
Commands, the preprocessing of training and evaluation batches (`transforms`), and
`load_dataset`, which finds a data set by name or folder (`registry`). Detection: `detection`
(images with boxes), `voc` (Pascal VOC folders, CSV box lists, the fixed split), `box_augment`
(letterbox and augmentation that keeps boxes right) and `registry.load_detection_dataset`.

May import: every layer below it in `mcuforge.layers` (errors, the foundation modules (atomic,
reference, targets, layers), stages, arith, ir, ops, models, analysis, planner, patch, runtime,
codegen, detect, frontends, rivals); it needs errors, reference and detect (letterbox, ground
truth). Not quant, train or anything above."""

from .dataset import ArrayDataset
from .registry import dataset_names, load_dataset

__all__ = ["ArrayDataset", "dataset_names", "load_dataset"]

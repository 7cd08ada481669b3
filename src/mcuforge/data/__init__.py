"""Data sets: loaders for IDX, CIFAR batches, image folders and Speech Commands; `load_dataset`."""

from .dataset import ArrayDataset
from .registry import dataset_names, load_dataset

__all__ = ["ArrayDataset", "dataset_names", "load_dataset"]

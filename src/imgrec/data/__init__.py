"""Data: readers, the dataset type, splits and checks."""

from imgrec.data.check import CheckReport, check_dataset, validate_trainable
from imgrec.data.dataset import ImageDataset, Materialized, materialize
from imgrec.data.readers import detect_format, list_formats, load_dataset
from imgrec.data.split import Splits, load_splits, split_dataset
from imgrec.data.write import write_digits_folder, write_image_folder

__all__ = [
    "CheckReport",
    "ImageDataset",
    "Materialized",
    "Splits",
    "check_dataset",
    "detect_format",
    "list_formats",
    "load_dataset",
    "load_splits",
    "materialize",
    "split_dataset",
    "validate_trainable",
    "write_digits_folder",
    "write_image_folder",
]

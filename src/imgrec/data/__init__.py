"""Data: readers (classification, detection, segmentation), the dataset type, splits, checks and conversion."""

from imgrec.data.boxes import BoxTarget, LabelIssue
from imgrec.data.check import CheckReport, check_dataset, validate_trainable
from imgrec.data.convert import ConvertResult, convert_dataset, list_label_formats
from imgrec.data.dataset import ImageDataset, Materialized, materialize
from imgrec.data.masks import IGNORE_INDEX, InstanceTarget, MaskTarget
from imgrec.data.readers import detect_format, list_formats, load_dataset
from imgrec.data.split import Splits, load_splits, split_dataset
from imgrec.data.write import write_digits_folder, write_image_folder

__all__ = [
    "IGNORE_INDEX",
    "BoxTarget",
    "CheckReport",
    "ConvertResult",
    "ImageDataset",
    "InstanceTarget",
    "LabelIssue",
    "MaskTarget",
    "Materialized",
    "Splits",
    "check_dataset",
    "convert_dataset",
    "detect_format",
    "list_formats",
    "list_label_formats",
    "load_dataset",
    "load_splits",
    "materialize",
    "split_dataset",
    "validate_trainable",
    "write_digits_folder",
    "write_image_folder",
]

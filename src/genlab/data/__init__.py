"""Data: named datasets, user data loaders, cleaning, augmentation, splits."""
from .augment import (
    Compose, GaussianNoise, RandomFlip, RandomRotation, RandomShift, parse_augment,
)
from .captions import decode_captions
from .cleaning import CleaningReport, clean_table
from .dataset import Dataset, as_dataset
from .datasets import load, load_splits, read_idx
from .loaders import load_array, load_image_folder, load_table
from .transforms import Normalize, denormalize_table, to_display

__all__ = [
    "Dataset", "as_dataset", "load", "load_splits", "read_idx", "decode_captions",
    "load_image_folder", "load_array", "load_table", "denormalize_table",
    "clean_table", "CleaningReport", "Normalize", "to_display",
    "RandomFlip", "RandomShift", "RandomRotation", "GaussianNoise", "Compose", "parse_augment",
]

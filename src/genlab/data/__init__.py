"""Data: named datasets, user data loaders, cleaning, augmentation, splits."""
from .dataset import Dataset, as_dataset

__all__ = ["Dataset", "as_dataset"]

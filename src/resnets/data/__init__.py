"""The data sets of the paper and their input pipelines: CIFAR-10/100 and small image folders held
on the device as uint8 arrays (Section 4.2), large image folders streamed from disk (Section 3.4)."""

from .arrays import ArrayData, FolderData, channel_stats, pixel_mean
from .device_loader import DeviceLoader
from .imagenet import PAPER_SCALES, FolderLoaders, Lighting, folder_loaders
from .load import load_data

__all__ = ["ArrayData", "DeviceLoader", "FolderData", "FolderLoaders", "Lighting", "PAPER_SCALES", "channel_stats",
           "folder_loaders", "load_data", "pixel_mean"]

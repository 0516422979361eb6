"""Files: contents stored by their sha256, and an organization's named files over them."""

from stepline.files.access import FileAccess, FileInfo
from stepline.files.storage import Blob, BlobMissing, FileStorage, LocalFileStorage

__all__ = ["Blob", "BlobMissing", "FileAccess", "FileInfo", "FileStorage", "LocalFileStorage"]

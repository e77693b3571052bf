"""Real images for the full profile: JPEGs read from the datasets' official zip archives.

:class:`ZipImages` is a sequence of PIL images over named members of a zip archive
(``mirflickr25k.zip`` holds ``mirflickr/imN.jpg``; ``train2017.zip`` holds
``train2017/<file_name>``); an image is found by its base name, so the label files'
names (``im1.jpg``, ``000000000009.jpg``) address it directly. The archives are
fetched and verified like every resource (:mod:`slics.data.resources`, profile
``full``); offline without them, :func:`ensure_archive` fails at once.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import Path

ARCHIVES = {
    # dataset -> (resource, mirror path of the zip)
    "mirflickr25k": ("mirflickr25k_images", "mirflickr25k/mirflickr25k.zip"),
    "coco": ("coco_images_train2017", "coco/train2017.zip"),
}


class ZipImages:
    """PIL images of ``names`` (base names) from a zip archive, in the order given."""

    def __init__(self, archive: str | Path, names):
        self.archive = Path(archive)
        if not self.archive.is_file():
            raise FileNotFoundError(f"image archive {self.archive} does not exist.")
        with zipfile.ZipFile(self.archive) as zf:
            members = {posixpath.basename(m): m for m in zf.namelist() if not m.endswith("/")}
        self.names = [posixpath.basename(str(n)) for n in names]
        missing = [n for n in self.names if n not in members]
        if missing:
            raise ValueError(f"{len(missing)} image(s) are not in {self.archive.name} (first: {missing[0]}).")
        self.members = [members[n] for n in self.names]
        self._zip = None

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, index: int):
        from PIL import Image

        if self._zip is None:
            self._zip = zipfile.ZipFile(self.archive)
        data = self._zip.read(self.members[index])
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def ensure_archive(dataset: str) -> Path:
    """Fetch (mirror or URL) the image archive of ``dataset``; raises ResourceError offline."""
    from .resources import resource_path

    if dataset not in ARCHIVES:
        raise ValueError(f"no image archive for dataset {dataset!r}; known: {', '.join(ARCHIVES)}.")
    resource, member = ARCHIVES[dataset]
    return resource_path(resource, member)

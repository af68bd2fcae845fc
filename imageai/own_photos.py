"""The user's own photos, one folder (or upload) per class, made into a training Dataset, Teachable-Machine style."""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from imageai.errors import DatasetError, ImageReadError
from imageai.preprocess import spec_for_rgb
from imageai.safe_zip import MB, is_hidden, iter_zip_images, split_path

if TYPE_CHECKING:
    from imageai.datasets import Dataset

SIZE = 64  # photos are kept only at the model's input size (the Train page's default), never at full size
MAX_CLASSES = 50  # one output score per class: beyond 50 the score bars and the confusion matrix stop being readable
MAX_IMAGES = 2_000  # 2,000 x 64 x 64 x 3 bytes = 24 MB held per session; a few epochs train in minutes on a CPU
MAX_FILES = 2 * MAX_IMAGES  # room for some non-photo files in the folders, refused before decoding anything
MAX_FILE_BYTES = 25 * MB  # a phone photo is 2-10 MB; a bigger file is not worth decoding for a 64x64 picture
MAX_TOTAL_BYTES = 500 * MB  # decoding more takes minutes; Streamlit itself accepts 200 MB per uploaded file
MAX_NAME_CHARS = 40  # a class name is a label on a bar, not a sentence
ZIP_MAX_MEMBERS = 5 * MAX_IMAGES  # macOS adds a '__MACOSX/._name' twin for every file, and folders are entries too
ZIP_MAX_RATIO = 100  # JPEG, PNG and HEIC are compressed already: a photo shrinking 100x in a zip is a zip bomb
TEST_SHARE = 0.2
SKIP_REASONS = ("not_image", "too_big", "no_class_folder",  # why a file was left out; each has `own.skip.<reason>`
                "unsafe_path", "link", "not_regular", "encrypted", "unsupported", "nested_archive")  # from safe_zip
SOURCE = "own photos"


@dataclass
class SkippedFile:
    name: str  # as uploaded, for showing to the user
    reason: str  # a key under `own.skip.` in the catalogs


@dataclass
class PhotoCollection:
    """The user's photos by class, each already (size, size, 3) uint8, and the files that were left out."""

    size: int = SIZE
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)  # class name -> photos, in upload order
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.images)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(photos) for name, photos in self.images.items()}

    @property
    def total(self) -> int:
        return sum(len(photos) for photos in self.images.values())

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def skip_reasons(self) -> Counter:
        """How many files were left out for each reason, e.g. {'not_image': 2, 'nested_archive': 1}."""
        return Counter(s.reason for s in self.skipped)


def class_name(raw: str) -> str:
    """A folder or class name as shown: NFC (macOS writes Korean decomposed), control characters gone, spaces single."""
    text = unicodedata.normalize("NFC", str(raw))
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    return " ".join(text.split())


def collect_from_classes(uploads: dict[str, list[tuple[str, bytes]]], *, size: int = SIZE) -> PhotoCollection:
    """{class name: [(file name, bytes), ...]} from one uploader per class; names equal but for case/NFC merge."""
    if sum(len(files) for files in uploads.values()) > MAX_FILES:
        raise DatasetError("own_too_many_photos", max=MAX_IMAGES)
    collector = _Collector(size)
    for raw_name, files in uploads.items():
        name = collector.add_class(raw_name)
        for file_name, data in files:
            if not _hidden_name(file_name):
                pixels = collector.decode(file_name, data)
                if pixels is not None:
                    collector.collection.images[name].append(pixels)
    return collector.collection


def collect_from_paths(files: list[tuple[str, bytes]], *, size: int = SIZE) -> PhotoCollection:
    """Files named by relative path, 'class/file.jpg' or 'chosen-folder/class/.../file.jpg' (Streamlit's folder
    upload names each file by its path inside the chosen folder, the folder's own name first)."""
    entries = []
    unsafe = []
    for name, data in files:
        parts = split_path(name)
        if parts is None:
            unsafe.append(SkippedFile(name, "unsafe_path"))
        elif parts and not is_hidden(parts):
            entries.append((parts, name, data))
    if len(entries) > MAX_FILES:
        raise DatasetError("own_too_many_photos", max=MAX_IMAGES)
    collection = _collect_tree(entries, size)
    collection.skipped[:0] = unsafe
    return collection


def collect_from_zip(data: bytes, *, size: int = SIZE) -> PhotoCollection:
    """A zip holding one folder per class (possibly inside one top folder); read in memory, never extracted."""
    refused: list[tuple[str, str]] = []
    members = iter_zip_images(data, max_members=ZIP_MAX_MEMBERS, max_total_bytes=MAX_TOTAL_BYTES,
                              max_ratio=ZIP_MAX_RATIO, max_member_bytes=MAX_FILE_BYTES, skipped=refused)
    collection = _collect_tree(((parts, "/".join(parts), content) for parts, content in members), size)
    collection.skipped[:0] = [SkippedFile(name, reason) for name, reason in refused]
    return collection


def check(collection: PhotoCollection) -> None:
    """Raise DatasetError unless the photos can train a model: two classes or more, each with two photos or more."""
    if collection.total == 0 and collection.skipped:
        raise DatasetError("own_nothing_readable")
    for name, photos in collection.images.items():
        if not photos:
            raise DatasetError("own_empty_class", name=name)
        if len(photos) < 2:  # one to learn from and one to test with: with no test photos there is no accuracy
            raise DatasetError("own_one_photo", name=name)
    if len(collection.images) < 2:
        raise DatasetError("own_need_two_classes")


def to_dataset(collection: PhotoCollection, *, test_share: float = TEST_SHARE, seed: int = 0,
               size: int | None = None) -> Dataset:
    """A Dataset with a stratified split: each class keeps `test_share` of its photos for testing, and at least
    one whenever it has two or more. Mean and std are measured on the training photos."""
    from imageai.datasets import Dataset, channel_stats  # late: datasets.py may list this module's loaders

    check(collection)
    if not 0 <= test_share < 1:
        raise ValueError(f"test_share must be in [0, 1), not {test_share}")
    size = size or collection.size
    rng = np.random.default_rng(seed)
    train, test = [], []  # (photo, label) pairs
    for label, photos in enumerate(collection.images.values()):
        order = rng.permutation(len(photos))
        n_test = _test_count(len(photos), test_share)
        test += [(photos[i], label) for i in order[:n_test]]
        train += [(photos[i], label) for i in order[n_test:]]
    train_images, train_labels = _stack(train, rng, size)
    test_images, test_labels = _stack(test, rng, size)
    spec = spec_for_rgb(size, *channel_stats(train_images))
    return Dataset(name="own_photos", classes=collection.classes, train_images=train_images,
                   train_labels=train_labels, test_images=test_images, test_labels=test_labels,
                   input_spec=spec, source=SOURCE, seed=seed)


def photo_pixels(data: bytes, name: str, size: int = SIZE) -> np.ndarray:
    """Photo bytes -> (size, size, 3) uint8: the centre square, scaled exactly as the "resize" preprocessing does."""
    from imageai.images import read_image
    from imageai.preprocess import resize_pixels

    pixels = resize_pixels(read_image(data, name=name), 3, size)  # (3, size, size) in [0, 1]
    return np.round(pixels * 255).astype(np.uint8).transpose(1, 2, 0)


class _Collector:
    """Builds a PhotoCollection one file at a time, enforcing the caps as it goes."""

    def __init__(self, size: int) -> None:
        self.collection = PhotoCollection(size)
        self._names: dict[str, str] = {}  # case-folded name -> the name as first written
        self._bytes = 0
        self.decoded = 0

    def add_class(self, raw: str) -> str:
        name = class_name(raw)
        if not name:
            raise DatasetError("own_empty_class_name")
        if len(name) > MAX_NAME_CHARS:
            raise DatasetError("own_class_name_too_long", name=name[:MAX_NAME_CHARS] + "…", max=MAX_NAME_CHARS)
        name = self._names.setdefault(name.casefold(), name)
        if name not in self.collection.images:
            if len(self.collection.images) >= MAX_CLASSES:
                raise DatasetError("own_too_many_classes", max=MAX_CLASSES)
            self.collection.images[name] = []
        return name

    def decode(self, file_name: str, data: bytes) -> np.ndarray | None:
        """The photo's (size, size, 3) pixels, or None after noting why the file was skipped."""
        self._bytes += len(data)
        if self._bytes > MAX_TOTAL_BYTES:
            raise DatasetError("own_too_big", mb=MAX_TOTAL_BYTES // MB)
        if len(data) > MAX_FILE_BYTES:
            return self.skip(file_name, "too_big")
        try:
            pixels = photo_pixels(data, file_name, self.collection.size)
        except ImageReadError:
            return self.skip(file_name, "not_image")
        self.decoded += 1
        if self.decoded > MAX_IMAGES:
            raise DatasetError("own_too_many_photos", max=MAX_IMAGES)
        return pixels

    def skip(self, file_name: str, reason: str) -> None:
        self.collection.skipped.append(SkippedFile(file_name, reason))


def _collect_tree(entries: Iterable[tuple[tuple[str, ...], str, bytes]], size: int) -> PhotoCollection:
    """Files by path -> a collection whose classes are the folders just below the folders all photos share."""
    collector = _Collector(size)
    decoded = []  # (path parts, file name, pixels): classes are known only once every path has been seen
    for parts, name, data in entries:
        pixels = collector.decode(name, data)
        if pixels is not None:
            decoded.append((parts, name, pixels))
    depth = _shared_depth([parts[:-1] for parts, _, _ in decoded])
    in_folders = [(parts, pixels) for parts, name, pixels in decoded if len(parts) > depth + 1]
    for parts, name, _ in decoded:
        if len(parts) <= depth + 1:
            collector.skip(name, "no_class_folder")
    for raw in sorted({parts[depth] for parts, _ in in_folders}, key=lambda n: (class_name(n).casefold(), n)):
        collector.add_class(raw)
    for parts, pixels in in_folders:
        collector.collection.images[collector.add_class(parts[depth])].append(pixels)
    if decoded and not in_folders:
        raise DatasetError("own_no_class_folders")
    return collector.collection


def _shared_depth(folders: list[tuple[str, ...]]) -> int:
    """How many leading folders all photos share and that are no class: 'photos/cat/1.jpg' and 'photos/dog/2.jpg'
    share 'photos'; the deepest photo always keeps one folder as its class ('photos/cat/...' alone -> 'cat')."""
    depth = 0
    longest = max((len(f) for f in folders), default=0)
    while depth < longest - 1 and all(len(f) > depth and f[depth] == folders[0][depth] for f in folders):
        depth += 1
    return depth


def _test_count(n: int, share: float) -> int:
    """Photos of one class kept for testing: a share, at least one when there are two or more, never all."""
    if n < 2 or share == 0:
        return 0
    return min(max(round(n * share), 1), n - 1)


def _stack(pairs: list[tuple[np.ndarray, int]], rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (N, size, size, 3) uint8 images and (N,) int64 labels."""
    order = rng.permutation(len(pairs))
    images = np.zeros((len(pairs), size, size, 3), np.uint8)
    labels = np.zeros(len(pairs), np.int64)
    for row, i in enumerate(order):
        photo, labels[row] = pairs[i]
        images[row] = photo if photo.shape[0] == size else _resized(photo, size)
    return images, labels


def _resized(photo: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(photo, "RGB").resize((size, size), Image.Resampling.LANCZOS))


def _hidden_name(name: str) -> bool:
    parts = split_path(name)
    return bool(parts) and is_hidden(parts)

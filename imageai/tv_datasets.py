"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision for users who are online: fetched once, checked, cached."""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imageai.errors import DatasetError
from imageai.modelfile import InputSpec
from imageai.preprocess import MNIST_SPEC

if TYPE_CHECKING:
    from imageai.datasets import Dataset

try:
    import fcntl  # POSIX: a lock file shared by every process (the app, the CLI)
except ImportError:  # Windows: sessions of one app process still share the thread lock
    fcntl = None

ENV_DIR = "IMAGEAI_DATA_DIR"
TIMEOUT_S = 30  # a download that stalls this long counts as offline
CHUNK = 256 * 1024
MAX_DOWNLOAD_BYTES = 400 * 2**20  # the largest file (CIFAR-10) is 163 MB; a mirror sending more is not it
USER_AGENT = "imageai (torchvision datasets)"
Progress = Callable[[str, float], None]  # (stage, fraction of that stage in [0, 1]); see load_torchvision


@dataclass(frozen=True)
class Source:
    """One torchvision dataset and how ImageAi feeds it to a model."""

    title: str  # the dataset's own name, the same in every language
    tv_class: str  # its class in torchvision.datasets
    spec: InputSpec  # mean and std: the usual published values over the full training set
    mirror_ok: bool  # a left-right mirrored picture keeps its class
    source: str  # where the files come from, kept in a trained model's record


SOURCES = {
    "mnist": Source("MNIST", "MNIST", MNIST_SPEC, False,
                    "MNIST via torchvision (ossci-datasets.s3.amazonaws.com/mnist)"),
    "fashion_mnist": Source("Fashion-MNIST", "FashionMNIST", InputSpec("resize", 1, 28, (0.2860,), (0.3530,)), True,
                            "Fashion-MNIST via torchvision (fashion-mnist.s3-website.eu-central-1.amazonaws.com)"),
    "cifar10": Source("CIFAR-10", "CIFAR10",
                      InputSpec("resize", 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)), True,
                      "CIFAR-10 via torchvision (www.cs.toronto.edu/~kriz/cifar.html)"),
}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def data_dir() -> Path:
    """Where downloads are kept: $IMAGEAI_DATA_DIR, else the user's cache folder (~/.cache/imageai)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "imageai"


def load_torchvision(name: str, *, root: str | Path | None = None, download: bool = True,
                     progress: Progress | None = None, limit_train: int | None = None,
                     limit_test: int | None = None) -> Dataset:
    """'mnist', 'fashion_mnist' or 'cifar10' as a Dataset of uint8 images, downloading it once if allowed.

    `progress(stage, fraction)` is called with stage "download" (bytes received of all files, 0..1; only
    when a download is needed), "extract" and "read". A download failure raises DatasetError('tv_offline'),
    files missing with download=False 'tv_not_downloaded', files that fail torchvision's checks 'tv_corrupt'.
    `limit_train` / `limit_test` keep a fixed random subset (seed 0) of that many images.
    """
    from imageai.datasets import Dataset  # late: datasets.py may list this module's loaders

    source = _source(name)
    cls = _tv_class(name)
    root = Path(root) if root else data_dir()
    report = progress or (lambda stage, fraction: None)
    with _download_lock(root, name):  # held while reading too, so no one unpacks under our feet
        _ensure(cls, root, source.title, report, download)
        report("read", 0.0)
        train_images, train_labels, classes = _read(cls, root, True, source.title)
        test_images, test_labels, _ = _read(cls, root, False, source.title)
        report("read", 1.0)
    train_images, train_labels = _subset(train_images, train_labels, limit_train)
    test_images, test_labels = _subset(test_images, test_labels, limit_test)
    return Dataset(name=name, classes=classes, train_images=train_images, train_labels=train_labels,
                   test_images=test_images, test_labels=test_labels, input_spec=source.spec,
                   source=source.source, mirror_ok=source.mirror_ok)


def fetch(name: str, *, root: str | Path | None = None, progress: Progress | None = None) -> None:
    """Download 'mnist', 'fashion_mnist' or 'cifar10' once and check it, without reading it (the Train page's
    download button: its cached loader reads it afterwards, once). Errors as for `load_torchvision`."""
    cls = _tv_class(name)
    root = Path(root) if root else data_dir()
    with _download_lock(root, name):
        _ensure(cls, root, _source(name).title, progress or (lambda stage, fraction: None), download=True)


def _ensure(cls: type, root: Path, title: str, report: Progress, download: bool) -> None:
    """The files are there and pass their checks, downloaded now if allowed; call with the download lock held."""
    if _present(cls, root):
        return
    if not download:
        raise DatasetError("tv_not_downloaded", name=title)
    _download(cls, root, title, report)
    if not _present(cls, root):  # for CIFAR-10 the md5 of every pickle, before anything unpickles it
        raise DatasetError("tv_corrupt", name=title)


def _source(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"no torchvision dataset {name!r}; choose from {tuple(SOURCES)}")
    return SOURCES[name]


def _tv_class(name: str) -> type:
    _source(name)
    import torchvision.datasets

    return getattr(torchvision.datasets, SOURCES[name].tv_class)


def _is_cifar(cls: type) -> bool:
    return hasattr(cls, "train_list")


def _raw_folder(cls: type, root: Path) -> Path:
    return root / cls.__name__ / "raw"  # as torchvision's MNIST.raw_folder, which needs an instance


def _present(cls: type, root: Path) -> bool:
    """CIFAR-10: every pickle matches torchvision's md5 (the only check standing before unpickling).
    MNIST, Fashion-MNIST: the unpacked idx files exist (plain arrays, read without pickle)."""
    if _is_cifar(cls):
        folder = root / cls.base_folder
        files = cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]
        return all(_md5(folder / f) == md5 for f, md5 in files)
    return all((_raw_folder(cls, root) / f.removesuffix(".gz")).is_file() for f, _ in cls.resources)


def _download(cls: type, root: Path, title: str, report: Progress) -> None:
    """Fetch the archives (md5-checked, trying each mirror), then unpack them where torchvision looks."""
    if _is_cifar(cls):
        archives = [([cls.url], root / cls.filename, cls.tgz_md5)]
    else:
        folder = _raw_folder(cls, root)
        archives = [([m + f for m in cls.mirrors], folder / f, md5) for f, md5 in cls.resources]
    shown = [0.0]  # never moves back, even when a mirror fails halfway and the next one starts over

    def on_fraction(i: int, fraction: float) -> None:
        shown[0] = max(shown[0], (i + fraction) / len(archives))
        report("download", shown[0])

    for i, (urls, path, md5) in enumerate(archives):
        _fetch(urls, path, md5, title, lambda f, i=i: on_fraction(i, f))
    report("extract", 0.0)
    try:
        if _is_cifar(cls):
            with tarfile.open(archives[0][1], "r:gz") as tar:  # md5-checked, and still refused paths outside
                tar.extractall(root, filter="data")
        else:
            for _, path, _ in archives:
                _gunzip(path, path.with_suffix(""))
    except (OSError, EOFError, ValueError, tarfile.TarError) as err:
        raise DatasetError("tv_corrupt", name=title) from err
    report("extract", 1.0)


def _fetch(urls: list[str], path: Path, md5: str, title: str, on_fraction: Callable[[float], None]) -> None:
    """Download to `path` from the first mirror whose file has the expected md5; keep a good earlier copy."""
    if _md5(path) == md5:
        on_fraction(1.0)
        return
    part = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.touch()
    except OSError:
        raise DatasetError("tv_cannot_save", name=title, folder=str(path.parent)) from None
    for url in urls:
        try:
            got = _stream(url, part, on_fraction)
        except (OSError, http.client.HTTPException, ValueError):  # URLError, timeouts, refused, cut off
            continue
        if got == md5:
            os.replace(part, path)
            return
    part.unlink(missing_ok=True)
    raise DatasetError("tv_offline", name=title)


def _stream(url: str, part: Path, on_fraction: Callable[[float], None]) -> str:
    """Save one URL to `part`, reporting bytes received; returns the md5 of what arrived."""
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(part, "wb") as out:
        total, done = response.length or 0, 0
        while chunk := response.read(CHUNK):
            done += len(chunk)
            if done > MAX_DOWNLOAD_BYTES:
                raise ValueError(f"{url} sends more than {MAX_DOWNLOAD_BYTES} bytes")
            out.write(chunk)
            digest.update(chunk)
            if total:
                on_fraction(min(done / total, 1.0))
    on_fraction(1.0)
    return digest.hexdigest()


def _gunzip(src: Path, dst: Path) -> None:
    """Unpack via a temporary name, so a half-written file never passes for a downloaded one."""
    part = dst.with_name(dst.name + ".part")
    with gzip.open(src, "rb") as fin, open(part, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
    os.replace(part, dst)


def _read(cls: type, root: Path, train: bool, title: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """One split as (N, H, W[, C]) uint8 images, (N,) int64 labels and the class names."""
    try:  # torchvision's CIFAR10 checks every md5 again before unpickling, and raises RuntimeError if one differs
        ds = cls(str(root), train=train, download=False)
        images = np.asarray(ds.data, dtype=np.uint8)  # MNIST: (N, 28, 28); CIFAR-10: (N, 32, 32, 3), HWC
        labels = np.asarray(ds.targets, dtype=np.int64)
    except (OSError, RuntimeError, ValueError, TypeError, AssertionError, EOFError, KeyError) as err:
        raise DatasetError("tv_corrupt", name=title) from err
    classes = tuple(c.split(" - ")[0] for c in ds.classes)  # MNIST says '0 - zero'; the Digits model says '0'
    if len(images) != len(labels) or (len(labels) and not 0 <= labels.min() <= labels.max() < len(classes)):
        raise DatasetError("tv_corrupt", name=title)
    return images, labels, classes


def _subset(images: np.ndarray, labels: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random subset of `limit` images in their original order (all of them when limit is None)."""
    if limit is None or limit >= len(labels):
        return images, labels
    keep = np.sort(np.random.default_rng(0).permutation(len(labels))[:limit])
    return images[keep], labels[keep]


def _md5(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.md5(usedforsecurity=False)  # md5 because torchvision publishes md5 sums, not for secrecy
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _download_lock(root: Path, name: str) -> Iterator[None]:
    """One check-and-download of a dataset at a time: a thread lock for sessions of this process, a file lock
    for other processes; whoever waits then finds the files in place and downloads nothing."""
    path = root.expanduser().resolve() / f".{name}.lock"
    with _locks_guard:
        lock = _locks.setdefault(str(path), threading.Lock())
    with lock:
        handle = _open_lock_file(path)
        try:
            if handle is not None and fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield
        finally:
            if handle is not None:
                handle.close()


def _open_lock_file(path: Path):
    """The lock file, or None for a folder we cannot write to (then no one else can be writing there either)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+b")
    except OSError:
        return None

"""MNIST, Fashion-MNIST and CIFAR-10 load from torchvision's on-disk format; downloads are checked; no real network."""
import gzip
import hashlib
import io
import pickle
import socket
import tarfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets
import torchvision.datasets.utils
from torchvision.datasets import CIFAR10, MNIST, FashionMNIST

from imageai import tv_datasets
from imageai.errors import DatasetError
from imageai.tv_datasets import data_dir, fetch, load_torchvision

N_TRAIN, N_TEST = 30, 12


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the internet fails, as it would offline."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", refuse)  # torchvision never downloads itself


def idx_bytes(array: np.ndarray) -> bytes:
    """torchvision's MNIST raw format: magic (0, 0, 8 = uint8, ndim), big-endian sizes, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_mnist(seed=0):
    rng = np.random.default_rng(seed)
    return {"train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
            "train-labels-idx1-ubyte": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": rng.integers(0, 10, N_TEST, dtype=np.uint8)}


def write_mnist(root: Path, folder: str, arrays: dict) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name, array in arrays.items():
        (raw / name).write_bytes(idx_bytes(array))


def fake_cifar(seed=0):
    """(data, labels) per batch file in CIFAR's own layout: rows of 3072 bytes, all red, then green, then blue."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        n = 4 if name == "test_batch" else 3
        batches[name] = (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist())
    return batches


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root: Path, batches: dict) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, (data, labels) in batches.items():
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels, "batch_label": name}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CIFAR_NAMES}))
    return folder


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def trust_cifar_files(monkeypatch, folder: Path) -> None:
    """Make torchvision's expected md5 sums those of our fake files (in this test only)."""
    sums = {p.name: md5(p.read_bytes()) for p in folder.iterdir()}
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                          "md5": sums["batches.meta"]})


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.length = len(data)


def serve(monkeypatch, files: dict[str, bytes], requests: list, delay: float = 0.0) -> None:
    """urlopen answering from `files` by URL; anything else is unreachable."""
    def urlopen(request, timeout=None):
        url = request.full_url
        requests.append(url)
        time.sleep(delay)
        if url not in files:
            raise urllib.error.URLError("unreachable")
        return FakeResponse(files[url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def test_mnist_loads_from_torchvisions_raw_files(tmp_path):
    arrays = fake_mnist()
    write_mnist(tmp_path, "MNIST", arrays)
    ds = load_torchvision("mnist", root=tmp_path, download=False)
    assert ds.name == "mnist" and ds.classes == tuple("0123456789")
    assert ds.train_images.shape == (N_TRAIN, 28, 28) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (N_TEST, 28, 28) and ds.test_labels.dtype == np.int64
    np.testing.assert_array_equal(ds.train_images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.test_labels, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.train_images, MNIST(str(tmp_path), train=True).data.numpy())
    spec = ds.input_spec
    assert (spec.preprocess, spec.channels, spec.size) == ("mnist", 1, 28)
    assert not ds.mirror_ok  # a mirrored 2 is no 2


def test_fashion_mnist_keeps_torchvisions_class_names(tmp_path):
    arrays = fake_mnist(seed=1)
    write_mnist(tmp_path, "FashionMNIST", arrays)
    ds = load_torchvision("fashion_mnist", root=tmp_path, download=False)
    assert ds.classes == tuple(FashionMNIST.classes) and ds.classes[0] == "T-shirt/top"
    np.testing.assert_array_equal(ds.test_images, arrays["t10k-images-idx3-ubyte"])
    spec = ds.input_spec
    assert (spec.preprocess, spec.channels, spec.size) == ("resize", 1, 28)


def test_cifar10_loads_checked_pickles_as_hwc_uint8(tmp_path, monkeypatch):
    batches = fake_cifar()
    trust_cifar_files(monkeypatch, write_cifar(tmp_path, batches))
    ds = load_torchvision("cifar10", root=tmp_path, download=False)
    assert ds.classes == tuple(CIFAR_NAMES)
    assert ds.train_images.shape == (15, 32, 32, 3) and ds.test_images.shape == (4, 32, 32, 3)
    first = batches["data_batch_1"][0][0]  # 1024 red, 1024 green, 1024 blue bytes, row by row
    np.testing.assert_array_equal(ds.train_images[0, 0, 1], first[[1, 1025, 2049]])
    np.testing.assert_array_equal(ds.train_images[0], first.reshape(3, 32, 32).transpose(1, 2, 0))
    assert ds.test_labels.tolist() == batches["test_batch"][1]
    spec = ds.input_spec
    assert (spec.preprocess, spec.channels, spec.size) == ("resize", 3, 32)


def test_cifar_files_that_fail_the_md5_check_are_never_unpickled(tmp_path, monkeypatch):
    folder = write_cifar(tmp_path, fake_cifar())
    trust_cifar_files(monkeypatch, folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": "swapped by someone", "labels": []}))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("a CIFAR file was unpickled"))
    with pytest.raises(DatasetError) as err:
        load_torchvision("cifar10", root=tmp_path, download=False)
    assert err.value.key == "tv_not_downloaded"
    with pytest.raises(DatasetError) as err:
        load_torchvision("cifar10", root=tmp_path, download=True)  # offline: cannot replace them either
    assert err.value.key == "tv_offline"


def test_download_failure_says_offline_and_suggests_the_builtin_datasets(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_torchvision("mnist", root=tmp_path, download=True)
    assert err.value.key == "tv_offline" and err.value.params == {"name": "MNIST"}
    for lang in ("en", "ko"):
        text = err.value.message(lang)
        assert "MNIST" in text and "Digits" in text and "Shapes" in text
    assert not any(p.suffix in (".gz", ".part") for p in tmp_path.rglob("*"))  # no half-downloaded files left


def test_a_folder_that_cannot_be_written_says_so(tmp_path):
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        load_torchvision("mnist", root=tmp_path / "a-file" / "data")
    assert err.value.key == "tv_cannot_save" and "IMAGEAI_DATA_DIR" in err.value.message("en")


def test_missing_files_without_download_say_not_downloaded(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_torchvision("fashion_mnist", root=tmp_path, download=False)
    assert err.value.key == "tv_not_downloaded" and err.value.params == {"name": "Fashion-MNIST"}


def mnist_archives(monkeypatch, arrays: dict, mirrors: list[str]) -> dict[str, bytes]:
    """gzip the fake files as the mirrors hold them, and make their md5 sums the expected ones."""
    archives = {f"{name}.gz": gzip.compress(idx_bytes(a), mtime=0) for name, a in arrays.items()}
    monkeypatch.setattr(MNIST, "resources", [(name, md5(data)) for name, data in archives.items()])
    monkeypatch.setattr(MNIST, "mirrors", mirrors)
    return archives


def test_download_tries_the_next_mirror_reports_progress_and_is_kept(tmp_path, monkeypatch):
    arrays = fake_mnist()
    archives = mnist_archives(monkeypatch, arrays, ["http://down.invalid/", "http://up.invalid/"])
    requests: list[str] = []
    serve(monkeypatch, {f"http://up.invalid/{name}": data for name, data in archives.items()}, requests)
    events: list[tuple[str, float]] = []
    ds = load_torchvision("mnist", root=tmp_path, progress=lambda stage, f: events.append((stage, f)))
    np.testing.assert_array_equal(ds.train_images, arrays["train-images-idx3-ubyte"])
    assert len(requests) == 8  # each of the 4 files: the dead mirror, then the live one
    downloads = [f for stage, f in events if stage == "download"]
    assert downloads == sorted(downloads) and downloads[-1] == 1.0 and all(0 <= f <= 1 for f in downloads)
    assert [s for s, _ in events if s != "download"] == ["extract", "extract", "read", "read"]
    events.clear()
    load_torchvision("mnist", root=tmp_path, progress=lambda stage, f: events.append((stage, f)))
    assert len(requests) == 8 and [s for s, _ in events] == ["read", "read"]  # no second download


def test_fetch_downloads_and_checks_without_reading_then_the_loader_reads_offline(tmp_path, monkeypatch):
    arrays = fake_mnist()
    archives = mnist_archives(monkeypatch, arrays, ["http://up.invalid/"])
    requests: list[str] = []
    serve(monkeypatch, {f"http://up.invalid/{name}": data for name, data in archives.items()}, requests)
    read = tv_datasets._read
    monkeypatch.setattr(tv_datasets, "_read", lambda *a: pytest.fail("fetch read the dataset"))
    fetch("mnist", root=tmp_path)
    assert len(requests) == 4
    monkeypatch.setattr(tv_datasets, "_read", read)
    ds = load_torchvision("mnist", root=tmp_path, download=False)
    np.testing.assert_array_equal(ds.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_a_mirror_serving_the_wrong_file_is_not_trusted(tmp_path, monkeypatch):
    archives = mnist_archives(monkeypatch, fake_mnist(), ["http://evil.invalid/"])
    serve(monkeypatch, {f"http://evil.invalid/{name}": data + b"tampered" for name, data in archives.items()}, [])
    with pytest.raises(DatasetError) as err:
        load_torchvision("mnist", root=tmp_path)
    assert err.value.key == "tv_offline"
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_two_sessions_loading_at_once_download_once(tmp_path, monkeypatch):
    archives = mnist_archives(monkeypatch, fake_mnist(), ["http://up.invalid/"])
    requests: list[str] = []
    serve(monkeypatch, {f"http://up.invalid/{name}": data for name, data in archives.items()}, requests, 0.05)
    results, errors = [], []

    def session():
        try:
            results.append(load_torchvision("mnist", root=tmp_path))
        except Exception as err:  # reported below, so a failure is not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=session) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(results) == 2
    assert sorted(requests) == sorted(f"http://up.invalid/{name}" for name in archives)  # each file once
    np.testing.assert_array_equal(results[0].train_images, results[1].train_images)


def test_cifar_download_unpacks_the_checked_archive(tmp_path, monkeypatch):
    source = tmp_path / "source"
    folder = write_cifar(source, fake_cifar())
    trust_cifar_files(monkeypatch, folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    monkeypatch.setattr(CIFAR10, "url", "http://cifar.invalid/cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(buf.getvalue()))
    serve(monkeypatch, {CIFAR10.url: buf.getvalue()}, [])
    ds = load_torchvision("cifar10", root=tmp_path / "cache")
    assert ds.train_images.shape == (15, 32, 32, 3) and ds.classes == tuple(CIFAR_NAMES)


def test_a_cifar_archive_escaping_its_folder_is_refused_even_with_a_matching_md5(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    monkeypatch.setattr(CIFAR10, "url", "http://cifar.invalid/cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(buf.getvalue()))
    serve(monkeypatch, {CIFAR10.url: buf.getvalue()}, [])
    with pytest.raises(DatasetError) as err:
        load_torchvision("cifar10", root=tmp_path / "cache")
    assert err.value.key == "tv_corrupt"
    assert not (tmp_path / "escaped.txt").exists()


def test_limits_keep_a_fixed_subset_in_order(tmp_path):
    arrays = fake_mnist()
    write_mnist(tmp_path, "MNIST", arrays)
    ds = load_torchvision("mnist", root=tmp_path, download=False, limit_train=7, limit_test=3)
    again = load_torchvision("mnist", root=tmp_path, download=False, limit_train=7, limit_test=3)
    assert ds.train_images.shape == (7, 28, 28) and len(ds.test_labels) == 3
    np.testing.assert_array_equal(ds.train_images, again.train_images)
    full = arrays["train-images-idx3-ubyte"]
    rows = [int(np.flatnonzero((full == img).all(axis=(1, 2)))[0]) for img in ds.train_images]
    assert rows == sorted(rows)


def test_damaged_raw_files_raise_tv_corrupt(tmp_path):
    arrays = fake_mnist()
    write_mnist(tmp_path, "MNIST", arrays)
    raw = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    raw.write_bytes(raw.read_bytes()[:8])  # header says 30 labels, none follow
    with pytest.raises(DatasetError) as err:
        load_torchvision("mnist", root=tmp_path, download=False)
    assert err.value.key == "tv_corrupt"


def test_data_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEAI_DATA_DIR", str(tmp_path / "data"))
    assert data_dir() == tmp_path / "data"
    write_mnist(tmp_path / "data", "MNIST", fake_mnist())
    assert load_torchvision("mnist", download=False).train_images.shape == (N_TRAIN, 28, 28)
    monkeypatch.delenv("IMAGEAI_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "cache" / "imageai"


def test_unknown_name_is_a_programming_error():
    with pytest.raises(ValueError):
        load_torchvision("imagenet", download=False)
    assert set(tv_datasets.SOURCES) == {"mnist", "fashion_mnist", "cifar10"}

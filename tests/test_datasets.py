"""The bundled datasets: the digits file's layout and split, the shapes loader, the registry and its errors."""
import numpy as np
import pytest

from imageai import datasets
from imageai.errors import DatasetError
from imageai.i18n import catalog


@pytest.fixture(scope="module")
def npz():
    with np.load(datasets.DIGITS_FILE) as f:
        return {k: f[k] for k in f.files}


def test_digits_file_holds_uint8_arrays_of_the_agreed_shapes(npz):
    assert set(npz) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert npz["train_images"].shape == (4000, 28, 28) and npz["test_images"].shape == (1000, 28, 28)
    assert npz["train_labels"].shape == (4000,) and npz["test_labels"].shape == (1000,)
    assert all(a.dtype == np.uint8 for a in npz.values())


def test_digits_split_is_stratified(npz):
    assert np.array_equal(np.bincount(npz["train_labels"]), [400] * 10)
    assert np.array_equal(np.bincount(npz["test_labels"]), [100] * 10)


def test_digits_test_images_are_not_in_the_training_set(npz):
    train = {img.tobytes() for img in npz["train_images"]}
    assert not any(img.tobytes() in train for img in npz["test_images"])


def test_digits_have_bright_ink_on_a_dark_background(npz):
    images = npz["train_images"]
    assert images.max() == 255
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]])
    assert border.mean() < 1  # MNIST digits sit in the middle of a black 28x28 field
    assert 0.10 < images.mean() / 255 < 0.16  # close to MNIST's mean 0.1307


def test_digits_training_set_is_shuffled(npz):
    assert len(set(npz["train_labels"][:20])) > 3


def test_load_digits_gives_int64_labels_and_mnist_spec():
    ds = datasets.load_digits()
    assert ds.name == "digits" and ds.classes == tuple("0123456789")
    assert ds.train_labels.dtype == np.int64 and ds.test_labels.dtype == np.int64
    assert ds.input_spec.preprocess == "mnist" and ds.input_spec.size == 28 and ds.input_spec.channels == 1
    assert ds.info()["train"] == 4000 and ds.info()["test"] == 1000


def test_missing_digits_file_raises_dataset_error(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DIGITS_FILE", tmp_path / "none.npz")
    with pytest.raises(DatasetError) as caught:
        datasets.load_digits()
    assert caught.value.key == "digits_missing"


def test_load_shapes_spec_matches_its_training_pixels():
    ds = datasets.load_shapes(seed=3, n_train=36, n_test=12)
    assert ds.train_images.shape == (36, 32, 32, 3) and ds.test_images.shape == (12, 32, 32, 3)
    pixels = ds.train_images.reshape(-1, 3) / 255.0
    assert np.allclose(ds.input_spec.mean, pixels.mean(0), atol=1e-4)
    assert np.allclose(ds.input_spec.std, pixels.std(0), atol=1e-4)
    assert ds.input_spec.preprocess == "resize" and ds.mirror_ok and ds.info()["seed"] == 3


def test_shapes_test_set_differs_from_training_set():
    ds = datasets.load_shapes(n_train=12, n_test=12)
    assert not np.array_equal(ds.train_images, ds.test_images)


def test_limited_cuts_both_splits():
    ds = datasets.load_digits().limited(50)
    assert len(ds.train_images) == len(ds.train_labels) == 50 and len(ds.test_labels) == 50


def test_registry_names_the_bundled_datasets():
    assert {"digits", "shapes"} <= set(datasets.DATASETS)
    assert datasets.get_dataset("digits").name == "digits"


def test_unknown_dataset_raises_dataset_error_with_a_message():
    with pytest.raises(DatasetError) as caught:
        datasets.get_dataset("cats")
    assert caught.value.key == "dataset_unknown"
    assert "cats" in caught.value.message("en") and "cats" in caught.value.message("ko")


def test_every_error_key_here_is_in_both_catalogs():
    for key in ("dataset_unknown", "digits_missing"):
        assert f"error.{key}" in catalog("en") and f"error.{key}" in catalog("ko")


def test_shared_dataset_is_built_once_and_read_only():
    from imageai.datasets import shared_dataset

    first = shared_dataset("digits")
    assert shared_dataset("digits") is first
    with pytest.raises(ValueError):
        first.train_images[0, 0, 0] = 1

"""The user's photos become a Dataset: classes by upload or folder, Korean names, junk skipped, caps enforced."""
import io
import tempfile
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from imageai import own_photos
from imageai.errors import DatasetError
from imageai.own_photos import (collect_from_classes, collect_from_paths, collect_from_zip, photo_pixels,
                                to_dataset)
from imageai.preprocess import batch_from_uint8, resize_pixels

RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def photo(color, i=0, size=(96, 72), fmt="PNG") -> bytes:
    """A photo-like picture: a coloured disc on a grey ground, moved a little by i."""
    img = Image.new("RGB", size, (128, 128, 128))
    ImageDraw.Draw(img).ellipse((10 + i, 8, 60 + i, 58), fill=color)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def photos(color, n, prefix="p"):
    return [(f"{prefix}{i}.png", photo(color, i)) for i in range(n)]


def make_zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def test_photo_pixels_are_the_resize_preprocessing_at_64():
    data = photo(RED, 3)
    pixels = photo_pixels(data, "a.png")
    expected = resize_pixels(Image.open(io.BytesIO(data)).convert("RGB"), 3, 64)  # (3, 64, 64) in [0, 1]
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.round(expected * 255).astype(np.uint8).transpose(1, 2, 0))


def test_class_uploads_become_a_dataset_with_a_stratified_split():
    collection = collect_from_classes({"고양이": photos(RED, 10), "강아지": photos(BLUE, 5)})
    assert collection.classes == ("고양이", "강아지") and collection.counts == {"고양이": 10, "강아지": 5}
    ds = to_dataset(collection)
    assert ds.classes == ("고양이", "강아지") and ds.name == "own_photos"
    assert ds.train_images.shape == (12, 64, 64, 3) and ds.test_images.shape == (3, 64, 64, 3)
    assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int64
    assert np.bincount(ds.test_labels).tolist() == [2, 1] and np.bincount(ds.train_labels).tolist() == [8, 4]
    red = ds.train_images[ds.train_labels == 0][:, 32, 30]  # the disc's middle: red for class 0
    assert (red[:, 0] > 150).all() and (red[:, 2] < 80).all()
    spec = ds.input_spec
    assert (spec.preprocess, spec.channels, spec.size) == ("resize", 3, 64)
    x = batch_from_uint8(ds.train_images, spec)  # what training feeds the model: (N, 3, 64, 64) normalised
    assert x.shape == (12, 3, 64, 64)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-3)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)


def test_every_class_with_two_photos_keeps_one_for_testing():
    collection = collect_from_classes({"a": photos(RED, 2), "b": photos(BLUE, 3)})
    ds = to_dataset(collection, test_share=0.2)
    assert np.bincount(ds.test_labels, minlength=2).tolist() == [1, 1]
    assert np.bincount(ds.train_labels, minlength=2).tolist() == [1, 2]
    none = to_dataset(collection, test_share=0)
    assert len(none.test_labels) == 0 and none.test_images.shape == (0, 64, 64, 3)


def test_a_class_with_one_photo_is_named_in_the_error():  # it would leave nothing to test the model with
    collection = collect_from_classes({"a": photos(RED, 2), "b": photos(BLUE, 3), "강아지": photos(GREEN, 1)})
    with pytest.raises(DatasetError) as err:
        to_dataset(collection)
    assert err.value.key == "own_one_photo" and err.value.params == {"name": "강아지"}


def test_split_is_deterministic_for_a_seed_and_differs_across_seeds():
    collection = collect_from_classes({"a": photos(RED, 10), "b": photos(BLUE, 10)})
    one, again, other = (to_dataset(collection, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(one.train_images, again.train_images)
    np.testing.assert_array_equal(one.test_labels, again.test_labels)
    assert not np.array_equal(one.test_images, other.test_images)


def test_to_dataset_can_scale_to_another_size():
    ds = to_dataset(collect_from_classes({"a": photos(RED, 3), "b": photos(BLUE, 3)}), size=32)
    assert ds.train_images.shape[1:] == (32, 32, 3) and ds.input_spec.size == 32


def test_korean_names_are_nfc_and_duplicates_merge_ignoring_case():
    nfd = unicodedata.normalize("NFD", "고양이")  # as macOS writes folder names
    assert nfd != "고양이"
    collection = collect_from_classes({"고양이": photos(RED, 2), nfd + " ": photos(RED, 1), "Cat": photos(BLUE, 2),
                                       " cat": photos(BLUE, 1), "big\tdog": photos(GREEN, 1)})
    assert collection.classes == ("고양이", "Cat", "big dog")
    assert collection.counts == {"고양이": 3, "Cat": 3, "big dog": 1}


def test_non_images_are_skipped_and_counted_and_hidden_files_ignored():
    broken = photo(RED)[:60]
    uploads = {"a": photos(RED, 2) + [("notes.txt", b"hello"), ("broken.png", broken), (".DS_Store", b"\0" * 8)],
               "b": photos(BLUE, 2) + [("doc.pdf", b"%PDF-1.4 ...")]}
    collection = collect_from_classes(uploads)
    assert collection.counts == {"a": 2, "b": 2}
    assert collection.skipped_count == 3
    assert collection.skip_reasons() == {"not_image": 3}
    assert [s.name for s in collection.skipped] == ["notes.txt", "broken.png", "doc.pdf"]


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_every_skip_reason_has_a_label_in_each_language(lang):
    from imageai.i18n import catalog

    labels = [catalog(lang).get(f"own.skip.{reason}") for reason in own_photos.SKIP_REASONS]
    assert all(labels) and len(set(labels)) == len(labels)


def test_empty_class_is_named_in_the_error():
    with pytest.raises(DatasetError) as err:
        to_dataset(collect_from_classes({"고양이": photos(RED, 3), "강아지": []}))
    assert err.value.key == "own_empty_class" and err.value.params == {"name": "강아지"}
    assert "강아지" in err.value.message("ko") and "강아지" in err.value.message("en")


@pytest.mark.parametrize("uploads, key", [
    ({"only": photos(RED, 4)}, "own_need_two_classes"),
    ({}, "own_need_two_classes"),
    ({"a": [("x.txt", b"x")], "b": [("y.txt", b"y")]}, "own_nothing_readable"),
])
def test_too_few_usable_classes_are_refused(uploads, key):
    with pytest.raises(DatasetError) as err:
        to_dataset(collect_from_classes(uploads))
    assert err.value.key == key


@pytest.mark.parametrize("name, key", [("   ", "own_empty_class_name"), ("", "own_empty_class_name"),
                                       ("x" * 41, "own_class_name_too_long")])
def test_bad_class_names_are_refused(name, key):
    with pytest.raises(DatasetError) as err:
        collect_from_classes({"ok": photos(RED, 1), name: photos(BLUE, 1)})
    assert err.value.key == key


def test_caps_on_classes_photos_and_bytes(monkeypatch):
    with pytest.raises(DatasetError) as err:
        collect_from_classes({f"c{i}": [] for i in range(own_photos.MAX_CLASSES + 1)})
    assert err.value.key == "own_too_many_classes" and err.value.params == {"max": 50}
    monkeypatch.setattr(own_photos, "MAX_IMAGES", 3)
    with pytest.raises(DatasetError) as err:
        collect_from_classes({"a": photos(RED, 2), "b": photos(BLUE, 2)})
    assert err.value.key == "own_too_many_photos"
    monkeypatch.setattr(own_photos, "MAX_IMAGES", 100)
    monkeypatch.setattr(own_photos, "MAX_TOTAL_BYTES", 3 * len(photo(RED)))
    with pytest.raises(DatasetError) as err:
        collect_from_classes({"a": photos(RED, 2), "b": photos(BLUE, 2)})
    assert err.value.key == "own_too_big"


def test_a_file_over_the_size_cap_is_skipped(monkeypatch):
    monkeypatch.setattr(own_photos, "MAX_FILE_BYTES", 100)
    collection = collect_from_classes({"a": photos(RED, 1), "b": [("tiny.txt", b"x" * 10)]})
    assert collection.skip_reasons() == {"too_big": 1, "not_image": 1}


def test_folder_upload_names_with_the_chosen_folder_first():
    files = [("photos/cat/a.png", photo(RED)), ("photos/cat/2024/b.png", photo(RED, 2)),
             ("photos/dog/c.png", photo(BLUE)), ("photos/고양이/d.png", photo(GREEN)),
             ("photos/readme.txt", b"notes"), ("photos/cover.png", photo(GREEN, 5)),
             ("photos/.DS_Store", b"\0"), ("photos/__MACOSX/cat/._a.png", b"junk")]
    collection = collect_from_paths(files)
    assert collection.classes == ("cat", "dog", "고양이")  # sorted, like torchvision's ImageFolder
    assert collection.counts == {"cat": 2, "dog": 1, "고양이": 1}
    assert sorted((s.name, s.reason) for s in collection.skipped) == [
        ("photos/cover.png", "no_class_folder"), ("photos/readme.txt", "not_image")]


def test_paths_without_a_shared_folder_use_the_first_folder_as_class():
    collection = collect_from_paths([("cat\\a.png", photo(RED)), ("dog/b.png", photo(BLUE)),
                                     ("Dog/c.png", photo(BLUE, 3))])
    assert collection.classes == ("cat", "Dog")  # sorted ignoring case; of 'Dog' and 'dog' the first sorted wins
    assert collection.counts == {"cat": 1, "Dog": 2}


def test_a_single_class_folder_is_that_class_and_needs_a_second():
    collection = collect_from_paths([("cat/a.png", photo(RED)), ("cat/b.png", photo(RED, 1))])
    assert collection.counts == {"cat": 2}
    with pytest.raises(DatasetError) as err:
        to_dataset(collection)
    assert err.value.key == "own_need_two_classes"


def test_files_outside_any_folder_are_refused_with_a_hint():
    with pytest.raises(DatasetError) as err:
        collect_from_paths([("a.png", photo(RED)), ("b.png", photo(BLUE))])
    assert err.value.key == "own_no_class_folders"


def test_climbing_upload_names_are_skipped():
    collection = collect_from_paths([("../cat/a.png", photo(RED)), ("cat/b.png", photo(RED)),
                                     ("dog/c.png", photo(BLUE))])
    assert collection.counts == {"cat": 1, "dog": 1}
    assert [(s.name, s.reason) for s in collection.skipped] == [("../cat/a.png", "unsafe_path")]


def test_zip_of_class_folders_builds_a_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    nfd_cat = unicodedata.normalize("NFD", "고양이")
    inner = make_zip([("x.png", photo(RED))])
    data = make_zip([("dataset/", b""), ("dataset/고양이/a.png", photo(RED)),
                     (f"dataset/{nfd_cat}/b.jpg", photo(RED, 4, fmt="JPEG")),
                     ("dataset/강아지/c.png", photo(BLUE)), ("dataset/강아지/d.png", photo(BLUE, 2)),
                     ("dataset/강아지/notes.txt", b"hi"), ("dataset/강아지/more.zip", inner),
                     ("__MACOSX/dataset/강아지/._c.png", b"junk"), ("../evil.png", photo(RED)),
                     ("/abs.png", photo(RED))])
    collection = collect_from_zip(data)
    assert collection.counts == {"강아지": 2, "고양이": 2}
    assert sorted(collection.skip_reasons().items()) == [("nested_archive", 1), ("not_image", 1),
                                                          ("unsafe_path", 2)]
    ds = to_dataset(collection)
    assert ds.classes == ("강아지", "고양이") and len(ds.train_labels) + len(ds.test_labels) == 4
    assert list(Path(tmp_path).iterdir()) == []  # nothing extracted, no temporary files


def test_zip_errors_reach_the_user_as_dataset_errors():
    with pytest.raises(DatasetError) as err:
        collect_from_zip(b"definitely not a zip")
    assert err.value.key == "zip_corrupt"
    assert err.value.message("ko") != err.value.message("en")


def test_own_photos_train_a_model_that_keeps_korean_class_names_in_its_file():
    from imageai import modelfile
    from imageai.preprocess import prepare
    from imageai.train import TrainConfig, train

    ds = to_dataset(collect_from_classes({"빨강": photos(RED, 10), "파랑": photos(BLUE, 10)}))
    result = train(ds, TrainConfig(epochs=3, batch_size=8, filters=4, val_share=0.1), device="cpu")
    loaded = modelfile.from_bytes(modelfile.to_bytes(result.loaded))
    assert loaded.classes == ("빨강", "파랑") and loaded.input_spec == ds.input_spec
    new_photo = Image.open(io.BytesIO(photo(BLUE, 7))).convert("RGB")
    with torch.no_grad():
        probs = loaded.model(prepare(new_photo, loaded.input_spec).tensor)  # (1, 2)
    assert int(probs.argmax()) == 1

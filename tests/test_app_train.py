"""AppTest of the Train page: train Digits for a moment, see the results, load model files, make own classes.

IMAGEAI_TRAIN_LIMIT (read by ui/train_views.py) cuts the dataset to its first N training and test images so a
training here takes a second or two.
"""
from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from imageai import datasets, jobs, modelfile, train
from imageai.errors import DatasetError
from imageai.i18n import t
from imageai.model import CNN, CNNConfig
from imageai.modelfile import InputSpec, LoadedModel
from tests.apptest import wait_until_trained
from ui.user_text import md_escape

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TRAIN_PAGE = "pages/views/train.py"
HOSTILE = "<img src=x onerror=alert(1)>[x](http://evil)"  # must stay text wherever a name is shown
HOSTILE_CLASS = "[x](http://e.vil)<b>:red[b]</b>"  # the same, within the 40 characters a class name may have


@pytest.fixture
def at(monkeypatch) -> AppTest:
    monkeypatch.setenv("IMAGEAI_TRAIN_LIMIT", "200")
    monkeypatch.setattr(jobs, "_manager", jobs.TrainingManager(2))  # leaves torch's thread count to the other tests
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    app.switch_page(TRAIN_PAGE).run()
    assert not app.exception
    return app


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), colour).save(buf, "PNG")
    return buf.getvalue()


def test_training_digits_shows_results_keeps_the_model_and_explains_with_it(at):
    assert at.selectbox(key="train_dataset").value == "digits"
    assert any(t.value == "0" for t in at.text)  # the gallery names each class
    at.number_input(key="train_epochs_digits").set_value(1)
    at.button(key="train_start").click().run()
    assert not at.exception
    wait_until_trained(at)
    assert not at.exception and not at.error
    assert [m.label for m in at.metric] == ["Test accuracy"]
    assert at.metric[0].value.endswith("%")
    assert len(at.get("plotly_chart")) == 4  # curves, confusion matrix, kernels before and after
    models = at.session_state["user_models"]
    assert list(models) == ["user-1"] and models["user-1"].name == "digits-1"
    assert at.button(key="train_result_explain_user-1") is not None
    at.text_input(key="train_rename_user-1").set_value("내 숫자 모델").run()
    assert models["user-1"].name == "내 숫자 모델"
    at.button(key="train_result_explain_user-1").click().run()
    assert not at.exception
    assert at.session_state["explore_model"] == "user-1"  # the Explore page opened with this model


def test_beyond_the_cap_the_page_shows_its_place_in_the_queue_and_can_leave_it(at, monkeypatch):
    mgr = jobs.TrainingManager(1)
    monkeypatch.setattr(jobs, "_manager", mgr)
    other = jobs.JobHandle(mgr)  # another user's training holds the only place
    other.start(datasets.load_digits().limited(100), train.TrainConfig(epochs=100, batch_size=1, blocks=1, filters=2),
                name="other", device="cpu")
    try:
        at.button(key="train_start").click().run()
        assert not at.exception
        assert any("Your place in the queue: 1." in i.value for i in at.info)
        at.button(key="train_stop").click().run()
        assert at.session_state["train_handle"].job.state is jobs.JobState.CANCELLED
        at.run()
        assert not at.exception and at.session_state["user_models"] == {}
    finally:
        other.stop()
        other.job.join(30)


def test_a_bad_model_file_shows_an_error_and_a_good_one_joins_the_list_until_deleted(at):
    at.file_uploader(key="train_model_file").upload("bad.safetensors", b"not a model at all").run()
    assert not at.exception
    assert len(at.error) == 1 and at.session_state["user_models"] == {}
    config = CNNConfig(in_channels=1, input_size=8, filters=(2,), classes=("a", HOSTILE))
    good = modelfile.to_bytes(LoadedModel(HOSTILE, CNN(config), InputSpec("resize", 1, 8, (0.5,), (0.5,))))
    at.file_uploader(key="train_model_file").set_value(("good.safetensors", good, "application/octet-stream"))
    at.run()
    assert not at.exception
    (key, loaded), = at.session_state["user_models"].items()
    assert loaded.name == HOSTILE
    assert any(HOSTILE in t.value for t in at.text)  # the class names are shown as plain text
    at.button(key=f"train_delete_{key}").click().run()
    assert not at.exception and at.session_state["user_models"] == {}


def test_own_photos_make_classes_by_name_and_count_their_photos(at):
    at.selectbox(key="train_dataset").set_value("own_photos").run()
    for name in ("고양이", HOSTILE_CLASS):
        at.text_input(key="train_own_new_class").set_value(name)
        at.button(key="train_own_add").click().run()
    assert [c["name"] for c in at.session_state["train_own_classes"]] == ["고양이", HOSTILE_CLASS]
    first, second = (c["id"] for c in at.session_state["train_own_classes"])
    at.file_uploader(key=f"train_own_files_{first}").set_value(
        [(f"{i}.png", png((250, 20, 20)), "image/png") for i in range(3)] + [("x.png", b"junk", "image/png")])
    at.file_uploader(key=f"train_own_files_{second}").set_value(
        [(f"{i}.png", png((20, 20, 250)), "image/png") for i in range(3)])
    at.run()
    assert not at.exception and not at.error
    counts = at.dataframe[0].value
    assert list(counts.iloc[:, 0]) == ["고양이", HOSTILE_CLASS] and list(counts.iloc[:, 1]) == [3, 3]
    assert at.warning[0].value == t("en", "own.skipped", count=1)  # one file left out
    texts = [t.value for t in at.text]
    assert "고양이" in texts and HOSTILE_CLASS in texts
    assert not at.button(key="train_start").disabled
    np.testing.assert_equal(at.session_state["train_own_memo"][2].classes, ("고양이", HOSTILE_CLASS))


def test_a_download_that_fails_offline_says_so_and_the_page_keeps_working(at, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEAI_DATA_DIR", str(tmp_path))  # nothing downloaded there yet

    def unreachable(request, timeout=None):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    at.selectbox(key="train_dataset").set_value("fashion_mnist").run()
    at.button(key="train_download_fashion_mnist").click().run()
    assert not at.exception
    expected = DatasetError("tv_offline", name="Fashion-MNIST").message("en")
    assert [e.value for e in at.error] == [md_escape(expected)]  # shown escaped, as every error that may quote a name
    assert not any(tmp_path.rglob("*.gz"))  # nothing half-downloaded left behind
    at.selectbox(key="train_dataset").set_value("digits").run()
    assert not at.exception and not at.error

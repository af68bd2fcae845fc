"""AppTest: every page runs without an exception, uploads go through the uploader, language switches keep state."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from imageai.i18n import t
from imageai.registry import bundled_path, load_bundled
from imageai.samples import sample_image
from ui.explain import BANNER_PX, fit_box

pytestmark = pytest.mark.skipif(not bundled_path("digits").exists(), reason="bundled models not built")

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 180  # torch's first import is slow here


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def digit_photo() -> bytes:
    """A dark '7' on light paper, the way a phone would see it."""
    img = Image.new("RGB", (200, 200), (235, 230, 220))
    ImageDraw.Draw(img).line([(50, 50), (150, 50), (90, 170)], fill=(20, 20, 30), width=14)
    return _png(img)


def _app(page: str | None = None, lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["lang"] = lang
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption]
    parts += [m.value for m in at.info] + [m.value for m in at.error] + [m.value for m in at.warning]
    return "\n".join(parts)


def _upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> None:
    at.file_uploader(key="explore_upload").set_value((name, data, mime))
    at.run()


def test_home_page_explains_why_a_cnn_in_both_languages():
    at = _app()
    _no_exception(at)
    assert at.title[0].value == "How does a CNN see a picture?"
    at.sidebar.selectbox(key="lang").set_value("ko")
    at.run()
    _no_exception(at)
    assert "CNN" in at.title[0].value and at.title[0].value != "How does a CNN see a picture?"


def test_explore_upload_predicts_and_steps_through_every_stage():
    at = _app("pages/views/explore.py")
    _no_exception(at)
    _upload(at, "seven.png", digit_photo())
    _no_exception(at)
    assert at.metric[0].value == "7"
    ribbon = at.segmented_control(key="explore_stage")
    assert ribbon.options[0].startswith("Input") and len(ribbon.options) == 10
    visited = [ribbon.value]
    for _ in range(9):
        at.button(key="explore_next").click()
        at.run()
        _no_exception(at)
        visited.append(at.session_state["explore_stage"])
    assert visited == ["input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "dense", "output"]
    assert "prediction: **7**" in _texts(at)


def test_explore_bad_upload_shows_message_and_next_upload_works():
    at = _app("pages/views/explore.py")
    _upload(at, "notes.png", b"this is not an image at all")
    _no_exception(at)
    assert at.error, "a bad upload must show an error"
    assert "Traceback" not in _texts(at)
    _upload(at, "seven.png", digit_photo())
    _no_exception(at)
    assert not at.error
    assert at.metric[0].value == "7"


def test_language_switch_keeps_the_picture_and_the_stage():
    at = _app("pages/views/explore.py")
    _upload(at, "seven.png", digit_photo())
    at.segmented_control(key="explore_stage").set_value("relu1")
    at.run()
    at.sidebar.selectbox(key="lang").set_value("ko")
    at.run()
    _no_exception(at)
    assert at.session_state["explore_stage"] == "relu1"
    assert at.metric[0].value == "7"
    assert t("ko", "stage.relu.role") in _texts(at)  # the ReLU stage itself, now in Korean


@pytest.mark.parametrize("model", ["digits", "shapes"])
def test_explore_sample_from_each_bundled_model(model):
    at = _app("pages/views/explore.py")
    at.selectbox(key="explore_model").set_value(model)
    at.run()
    at.segmented_control(key="explore_source").set_value("sample")
    at.run()
    at.button(key="explore_sample_button").click()
    at.run()
    _no_exception(at)
    picture = at.session_state["explore_input"]
    array, label = sample_image(model, at.session_state["explore_sample_seed"], 1)  # this session's first pick
    np.testing.assert_array_equal(picture.array, array)
    assert picture.source == "sample" and picture.true_class == label
    assert at.metric[0].value in load_bundled(model).classes
    at.segmented_control(key="explore_stage").set_value("output")
    at.run()
    _no_exception(at)


def test_conv_stage_starts_at_filter_ones_strongest_response():
    at = _app("pages/views/explore.py")
    _upload(at, "seven.png", digit_photo())
    at.segmented_control(key="explore_stage").set_value("conv1")
    at.run()
    _no_exception(at)
    maps = at.session_state["_explanation"][1].trace.values["conv1"]
    y, x = np.unravel_index(int(np.argmax(maps[0])), maps[0].shape)
    assert (at.slider(key="pick_conv1_y").value, at.slider(key="pick_conv1_x").value) == (y, x)
    assert at.slider(key="pick_conv1_filter").value == 1


def test_explore_without_a_picture_shows_the_chosen_models_pipeline():
    at = _app("pages/views/explore.py")
    _no_exception(at)
    assert at.info and "Choose a picture" in at.info[0].value
    at.selectbox(key="explore_model").set_value("shapes")
    at.run()
    _no_exception(at)
    at.get_by_key("explore_pipeline")  # raises KeyError when the chart is missing


def test_switching_model_keeps_working_when_a_picked_position_no_longer_fits():
    at = _app("pages/views/explore.py")
    _upload(at, "seven.png", digit_photo())
    at.segmented_control(key="explore_stage").set_value("flatten")
    at.run()
    at.slider(key="pick_flatten_index").set_value(1500)  # digits' vector has 1568 elements, shapes' 1024
    at.run()
    _no_exception(at)
    at.selectbox(key="explore_model").set_value("shapes")
    at.run()
    _no_exception(at)
    at.segmented_control(key="explore_stage").set_value("flatten")
    at.run()
    _no_exception(at)
    assert at.slider(key="pick_flatten_index").value <= 1023


@pytest.mark.parametrize("size, shown", [((28, 28), (160, 160)), ((4000, 3000), (160, 120)),
                                         ((5000, 1), (160, 1)), ((1, 5000), (1, 160))])
def test_the_banner_picture_fits_a_160_pixel_box_and_never_loses_a_side(size, shown):
    assert fit_box(Image.new("RGB", size), BANNER_PX).size == shown

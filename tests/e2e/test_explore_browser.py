"""Real browser: upload a photo on /explore, step from Input to Output, switch language; no exception box."""
from __future__ import annotations


import pytest
from PIL import Image, ImageDraw

from imageai.registry import bundled_path
from tests.e2e.browser import assert_no_exception, open_app

pytestmark = pytest.mark.skipif(not bundled_path("digits").exists(), reason="bundled models not built")


@pytest.fixture()
def seven(tmp_path):
    img = Image.new("RGB", (240, 240), (236, 232, 222))
    ImageDraw.Draw(img).line([(60, 60), (180, 60), (110, 200)], fill=(25, 25, 35), width=16)
    path = tmp_path / "seven.jpg"
    img.save(path, quality=90)
    return path


def _upload(page, path) -> None:
    page.locator(".st-key-explore_upload input[type='file']").set_input_files(str(path))
    page.wait_for_selector("[data-testid='stMetricValue']")


def test_upload_step_to_output_and_switch_language(page, server, seven):
    open_app(page, server, "explore")
    page.get_by_text("Explore a picture").first.wait_for()
    _upload(page, seven)
    assert page.locator("[data-testid='stMetricValue']").first.inner_text().strip() == "7"
    next_button = page.get_by_role("button", name="Next")
    for expected in ["Convolution 1", "ReLU 1", "Max pooling 1", "Convolution 2", "ReLU 2", "Max pooling 2",
                     "Flatten", "Fully connected", "Output"]:
        next_button.click()
        page.get_by_role("heading", name=expected).first.wait_for()
        assert_no_exception(page)
    page.get_by_text("The model's prediction:").first.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 2  # probability bars and the softmax table
    assert next_button.is_disabled()

    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
    page.get_by_role("option", name="한국어").click()
    page.get_by_role("button", name="이전").wait_for()
    page.get_by_text("모델의 예측").first.wait_for()
    assert page.locator("[data-testid='stMetricValue']").first.inner_text().strip() == "7"
    assert_no_exception(page)


def test_deep_link_to_explore_runs_the_app_with_navigation(page, server):
    """After the first visit (see warm_up), a deep link runs app.py and its navigation, with no notice."""
    open_app(page, server, "explore")
    page.get_by_text("Explore a picture").first.wait_for()
    assert page.locator("[data-testid='stSidebarNav']").count() == 1
    assert page.get_by_text("Page not found").count() == 0
    assert_no_exception(page)

"""Server configuration for a shared classroom server: Streamlit's settings as it reads them, and the README's
section on limits, reverse proxy and scaling kept true to the code."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from imageai import images, jobs, modelfile, own_photos, safe_zip, train
from imageai.model import CNN, CNNConfig
from imageai.preprocess import spec_for_rgb
from ui.train_views import FILTERS

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20
LARGEST_MODEL_MB = 6.5
OPTIONS = ("server.enableXsrfProtection", "server.enableCORS", "browser.gatherUsageStats", "server.maxUploadSize",
           "client.showErrorDetails", "server.headless", "server.baseUrlPath")
READ_OPTIONS = f"""
import json
from streamlit import config
config.get_config_options(force_reparse=True)
print(json.dumps({{name: config.get_option(name) for name in {OPTIONS!r}}}))
"""


@pytest.fixture(scope="module")
def streamlit_options() -> dict:
    """The options as `streamlit run` in the repository sees them (a fresh process: config is process-wide)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}  # no overrides from outside
    run = subprocess.run([sys.executable, "-c", READ_OPTIONS], cwd=ROOT, env={**env, "HOME": str(ROOT / "tests")},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Running for a class: limits, reverse proxy, scaling")
    end = text.find("\n## ", start + 3)
    return " ".join(text[start:end if end >= 0 else None].split())


def test_xsrf_and_cors_protection_stay_on(streamlit_options):
    assert streamlit_options["server.enableXsrfProtection"] is True
    assert streamlit_options["server.enableCORS"] is True


def test_usage_statistics_are_off_and_errors_show_no_details(streamlit_options):
    assert streamlit_options["browser.gatherUsageStats"] is False
    assert streamlit_options["client.showErrorDetails"] == "none"  # a traceback stays in the server log
    assert streamlit_options["server.headless"] is True


def test_the_upload_limit_is_set_and_matches_the_largest_picture_the_app_reads(streamlit_options):
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert "maxUploadSize" in config["server"]  # set on purpose, not Streamlit's default of 200 MB
    assert streamlit_options["server.maxUploadSize"] * MB == images.MAX_FILE_BYTES
    assert streamlit_options["server.maxUploadSize"] * MB <= modelfile.MAX_FILE_BYTES  # Streamlit's message comes first


def test_the_app_is_served_from_the_root_unless_the_proxy_asks_otherwise(streamlit_options):
    assert streamlit_options["server.baseUrlPath"] == ""


@pytest.mark.parametrize("phrase", [
    f"{images.MAX_PIXELS // 1_000_000} megapixels",
    f"| picture file | {images.MAX_FILE_BYTES // MB} MB |",
    f"| upload size | {images.MAX_FILE_BYTES // MB} MB per file |",
    f"| model file | {modelfile.MAX_FILE_BYTES // MB} MB |",
    f"{own_photos.MAX_IMAGES:,} photos, {own_photos.MAX_CLASSES} classes, {own_photos.MAX_FILE_BYTES // MB} MB per "
    f"photo, {own_photos.MAX_TOTAL_BYTES // MB} MB in all",
    f"{own_photos.ZIP_MAX_MEMBERS:,} entries; a member unpacking more than {own_photos.ZIP_MAX_RATIO} times its "
    f"packed size (beyond {safe_zip.RATIO_FREE_BYTES // MB} MB)",
    f"| trainings at once | {jobs.DEFAULT_MAX_TRAININGS} per server process | `IMAGEAI_MAX_TRAININGS` |",
    "`IMAGEAI_TORCH_THREADS`",
    f"batch loss above {train.DIVERGED_FACTOR} × ln(classes)",
    f"decoded at reduced scale to {images.WORK_SIDE} pixels",
    f"under {LARGEST_MODEL_MB} MB (1 block of {max(FILTERS)} filters on {own_photos.SIZE} × {own_photos.SIZE} photos "
    f"of {own_photos.MAX_CLASSES} classes)",
])
def test_the_readme_states_each_limit_as_the_code_sets_it(readme_section, phrase):
    assert phrase in readme_section


def test_the_largest_model_the_train_page_can_make_is_as_small_as_the_readme_says():
    sizes = []
    for blocks in (1, 2, 3):  # the page's blocks slider; the most filters, classes and pixels it allows
        widths = train.TrainConfig(blocks=blocks, filters=max(FILTERS)).filters_per_block()
        config = CNNConfig(3, own_photos.SIZE, widths, tuple(f"class {i}" for i in range(own_photos.MAX_CLASSES)))
        spec = spec_for_rgb(own_photos.SIZE, (0.5,) * 3, (0.5,) * 3)
        loaded = modelfile.LoadedModel("largest", CNN(config), spec, {})
        sizes.append(len(modelfile.to_bytes(loaded)))
    assert max(sizes) == sizes[0] and max(sizes) < LARGEST_MODEL_MB * MB < modelfile.MAX_FILE_BYTES


def test_the_readme_shows_a_websocket_proxy_with_sticky_sessions_for_replicas(readme_section):
    assert "/_stcore/stream" in readme_section and "/_stcore/health" in readme_section
    assert "proxy_set_header Upgrade $http_upgrade;" in readme_section
    assert 'proxy_set_header Connection "upgrade";' in readme_section
    assert "--server.baseUrlPath imageai" in readme_section and "location /imageai/" in readme_section
    assert "server.enableXsrfProtection = true" in readme_section and "server.enableCORS" in readme_section
    assert "sticky sessions" in readme_section and "server.cookieSecret" in readme_section
    assert re.search(r"cookie \w+ insert", readme_section)  # sticky by cookie: a school shares one IP address

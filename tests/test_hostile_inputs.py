"""The hostile image corpus end to end: uploaded on the Explore page (AppTest) and given to `python -m imageai explain`.

Each file ends in a prediction or in its catalog message, never a traceback; the session goes on working; and no
picture larger than images.MAX_PIXELS is ever decoded (a decompression bomb is refused from its header).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageFile
from streamlit.testing.v1 import AppTest

from imageai import cli, images
from imageai.registry import bundled_path, load_bundled
from tests.hostile_corpus import EXPLAINS, Case, bombs, image_corpus, is_message, valid_png
from imageai.images import EXTENSIONS

pytestmark = pytest.mark.skipif(not bundled_path("digits").exists(), reason="bundled models not built")

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
EXPLORE = "pages/views/explore.py"
SUBPROCESS_CASES = ("empty.png", "cut.jpg", "bomb.png", "drawing.svg", "huge-file.png", "phone-48mp.jpg")


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return image_corpus()


@pytest.fixture
def decoded(monkeypatch) -> list[tuple[int, int]]:
    """The size of every image Pillow decodes while the test runs (the app runs in this process)."""
    sizes: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def recording_load(self, *args, **kwargs):
        sizes.append(self.size)
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # our own limit must hold without Pillow's
    return sizes


def assert_no_bomb_decoded(sizes: list[tuple[int, int]]) -> None:
    assert sizes, "the recorder saw no decoding at all"
    assert max(w * h for w, h in sizes) <= images.MAX_PIXELS, max(sizes, key=lambda s: s[0] * s[1])


def explore(lang: str = "en", model: str = "digits") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page(EXPLORE).run()
    if model != "digits":
        at.selectbox(key="explore_model").set_value(model).run()
    assert not at.exception
    return at


def upload_name(case: Case) -> str:
    """The case's name, renamed to .png where the uploader's type filter would not offer it ('scan.tiff.png').

    The browser's file picker only offers imageai.images.EXTENSIONS (and Streamlit re-checks the name on the
    server), so a TIFF or SVG reaches the app only renamed; the app then reads the format from the bytes.
    """
    return case.name if case.name.rsplit(".", 1)[-1] in EXTENSIONS else f"{case.name}.png"


def upload(at: AppTest, name: str, data: bytes) -> None:
    at.file_uploader(key="explore_upload").set_value((name, data, "application/octet-stream"))
    at.run()


def shown_text(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "error", "warning", "info", "text")
                     for e in getattr(at, kind))


def outcome_problems(at: AppTest, case: Case, model: str, lang: str) -> list[str]:
    """What is wrong with the page after uploading `case` (an empty list when all is right)."""
    problems = []
    if at.exception:
        problems.append(f"exception {[e.value for e in at.exception]}")
    if "Traceback" in shown_text(at):
        problems.append("a traceback is shown")
    expected = case.expect_for(model)
    if expected == EXPLAINS:
        if at.error or not at.metric:
            problems.append(f"no prediction; errors {[e.value for e in at.error]}")
        elif model == "digits" and case.digit is not None and at.metric[0].value != case.digit:
            problems.append(f"predicted {at.metric[0].value!r}, the picture shows {case.digit!r}")
        elif at.metric[0].value not in load_bundled(model).classes:
            problems.append(f"prediction {at.metric[0].value!r} is no class of {model}")
    else:
        if at.metric:
            problems.append(f"a prediction ({at.metric[0].value}) instead of error.{expected}")
        if [e.value for e in at.error if is_message(e.value, lang, expected)] == [] or len(at.error) != 1:
            problems.append(f"errors {[e.value for e in at.error]} are not the one error.{expected} in {lang}")
    return problems


def upload_corpus(at: AppTest, cases: list[Case], model: str, lang: str) -> list[str]:
    """Upload each case then a valid picture; returns every problem, each naming its case."""
    problems = []
    for case in cases:
        upload(at, upload_name(case), case.data)
        problems += [f"{case.name}: {p}" for p in outcome_problems(at, case, model, lang)]
        upload(at, "seven.png", valid_png())
        if at.exception or at.error or not at.metric or at.metric[0].value not in load_bundled(model).classes:
            problems.append(f"{case.name}: the next valid upload got no prediction")
    return problems


def test_every_corpus_file_on_explore_ends_in_a_prediction_or_its_message_and_the_session_goes_on(corpus, decoded):
    at = explore()
    assert upload_corpus(at, corpus, "digits", "en") == []
    assert at.metric[0].value == "7"
    assert_no_bomb_decoded(decoded)


def test_pictures_with_no_ink_are_explained_by_the_shapes_model(corpus):
    at = explore(model="shapes")
    cases = [c for c in corpus if c.expect_for("shapes") != c.expect_for("digits")]
    assert {c.name for c in cases} >= {"one-pixel.png", "thin-1x5000.png", "wide-5000x1.png", "transparent.png"}
    assert upload_corpus(at, cases, "shapes", "en") == []


def test_in_korean_each_kind_of_refusal_shows_the_korean_catalog_message(corpus, decoded):
    at = explore(lang="ko")
    first_of_each_key: dict[str, Case] = {}
    for case in corpus:
        if case.expect_for("digits") != EXPLAINS:
            first_of_each_key.setdefault(case.expect_for("digits"), case)
    assert set(first_of_each_key) == {"image_empty", "image_not_image", "image_corrupt", "image_too_many_pixels",
                                      "image_no_ink", "image_unsupported", "image_too_big_file"}
    assert upload_corpus(at, list(first_of_each_key.values()), "digits", "ko") == []
    assert_no_bomb_decoded(decoded)


# --- the command line ---

@pytest.fixture(scope="module")
def corpus_files(corpus, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    for case in corpus:
        (folder / case.name).write_bytes(case.data)
    return {case.name: folder / case.name for case in corpus}


def cli_problems(case: Case, model: str, code: int, out: str, err: str) -> list[str]:
    """What is wrong with one `explain` run: exit 0 with the JSON report, or 2 with the one catalog line."""
    expected = case.expect_for(model)
    if "Traceback" in out + err:
        return ["a traceback"]
    if expected == EXPLAINS:
        if (code, err) != (0, ""):
            return [f"exit {code}, stderr {err!r}"]
        report = json.loads(out)
        predicted = report["prediction"]["class"]
        if model == "digits" and case.digit is not None and predicted != case.digit:
            return [f"predicted {predicted!r}, the picture shows {case.digit!r}"]
        return [] if predicted in report["classes"] else [f"prediction {predicted!r} is no class"]
    problems = []
    if code != 2 or out != "":
        problems.append(f"exit {code}, stdout {out[:80]!r}")
    if err.count("\n") != 1 or not err.endswith("\n") or not is_message(err, "en", expected):
        problems.append(f"stderr {err!r} is not the one line of error.{expected}")
    return problems


@pytest.mark.parametrize("model", ["digits", "shapes"])
def test_explain_command_gives_a_report_or_one_catalog_line_for_every_corpus_file(corpus, corpus_files, decoded,
                                                                                  capsys, model):
    problems = []
    for case in corpus:
        code = cli.main(["explain", str(corpus_files[case.name]), "--model", model, "--json"])
        out, err = capsys.readouterr()
        problems += [f"{case.name}: {p}" for p in cli_problems(case, model, code, out, err)]
    assert problems == []
    assert_no_bomb_decoded(decoded)


def test_python_m_imageai_explain_in_a_real_process_for_a_sample_of_the_corpus(corpus, corpus_files):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cases = [c for c in corpus if c.name in SUBPROCESS_CASES]
    problems = []
    for case in cases:  # one after another: each process holds torch, some 800 MB
        run = subprocess.run([sys.executable, "-m", "imageai", "explain", str(corpus_files[case.name]), "--json"],
                             capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
        problems += [f"{case.name}: {p}" for p in cli_problems(case, "digits", run.returncode, run.stdout,
                                                                 run.stderr)]
    assert len(cases) == len(SUBPROCESS_CASES) and problems == []


PEAK_RSS_SCRIPT = """
import resource, sys
from imageai import cli
assert cli.main(["explain", sys.argv[1]]) == 0  # warm: torch, the model and a real decode are in the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
codes = [cli.main(["explain", path]) for path in sys.argv[2:]]
print(codes, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, file=sys.stderr)
"""


def test_decompression_bombs_are_refused_by_a_real_process_without_its_memory_growing(corpus_files):
    bomb_paths = [str(corpus_files[case.name]) for case in bombs()]
    assert len(bomb_paths) == 3
    run = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, str(corpus_files["photo.bmp"]), *bomb_paths],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=180)
    assert run.returncode == 0, run.stderr
    codes, grown_mb = run.stderr.strip().splitlines()[-1].rsplit(" ", 1)
    assert codes == "[2, 2, 2]"
    # The smallest bomb is 81 MP: decoding it would take 243 MB of RGB pixels, the largest 7.5 GB.
    assert int(grown_mb) < 20, f"peak memory grew by {grown_mb} MB while refusing the bombs"

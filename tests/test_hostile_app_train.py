"""AppTest of hostile uploads and training faults: bad zips and folders and model files on the Train and Explore
pages, a diverging learning rate, an oversized batch, Stop pressed many times, a second training in one session.

Each ends in a clear catalog message or a working result, with no exception; nothing is written to disk; and the
session keeps working afterwards. IMAGEAI_TRAIN_LIMIT (ui/train_views.py) keeps each training to a second or two.
"""
from __future__ import annotations

import functools
import io
import json
import os
import pathlib
import stat
import tempfile
import tracemalloc
import unicodedata
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save as save_tensors
from streamlit.testing.v1 import AppTest

from imageai import jobs, modelfile, own_photos
from imageai.i18n import t
from imageai.model import CNN, CNNConfig
from imageai.modelfile import InputSpec, LoadedModel
from imageai.registry import bundled_path
from tests.apptest import wait_until_trained
from tests.hostile_corpus import is_message
from tests.test_safe_zip import patch_headers

pytestmark = pytest.mark.skipif(not bundled_path("digits").exists(), reason="bundled models not built")

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TRAIN_PAGE = "pages/views/train.py"
EXPLORE_PAGE = "pages/views/explore.py"
TOKEN = f"escape-{uuid.uuid4().hex[:12]}"  # in every hostile member's name, so a file that got out can be found


@pytest.fixture
def at(monkeypatch, tmp_path) -> Iterator[AppTest]:
    monkeypatch.setenv("IMAGEAI_TRAIN_LIMIT", "200")
    monkeypatch.setattr(jobs, "_manager", jobs.TrainingManager(2))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the app's temporary space, for this test
    os.mkdir(tmp_path / "tmp")
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    app.switch_page(TRAIN_PAGE).run()
    assert not app.exception
    yield app
    if "train_handle" in app.session_state and app.session_state["train_handle"].job is not None:
        app.session_state["train_handle"].stop()  # a failed test must not leave a training running
        app.session_state["train_handle"].job.join(30)


def no_file_got_out(tmp_path: Path) -> None:
    """Nothing in the temporary space, and no file named with TOKEN in the repository or where paths point."""
    assert list((tmp_path / "tmp").iterdir()) == []
    places = [Path("/"), Path("/tmp"), Path(tempfile.gettempdir()), Path.cwd(), Path.cwd().parent, Path.home(),
              ROOT.parent]
    assert [p for place in places for p in place.glob(f"*{TOKEN}*")] == []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in (".venv", ".git")]
        assert not [f for f in files + dirs if TOKEN in f], folder


def png(colour: tuple[int, int, int], i: int = 0) -> bytes:
    img = Image.new("RGB", (20, 20), colour)
    img.putpixel((i % 20, 0), (i * 40 % 256, 0, 0))  # no two photos alike
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def two_classes(first: str = "cat", second: str = "dog", n: int = 6) -> list[tuple[str, bytes]]:
    return ([(f"{first}/{i}.png", png((230, 30, 30), i)) for i in range(n)]
            + [(f"{second}/{i}.png", png((30, 30, 230), i)) for i in range(n)])


def symlink(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits below count
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


@functools.cache
def zip_bomb(unpacked_mb: int, *, lie: bool = False) -> bytes:
    """Two good classes and 'cat/bomb.png': `unpacked_mb` MB of zeros packed 1000 to 1; `lie` makes its headers
    claim 1 KB, as a hand-made bomb would."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in two_classes():
            zf.writestr(name, data)
        with zf.open("cat/bomb.png", "w") as member:
            zero = bytes(2**20)
            for _ in range(unpacked_mb):
                member.write(zero)
    return patch_headers(buf.getvalue(), b"cat/bomb.png", file_size=1000) if lie else buf.getvalue()


def too_many_files() -> bytes:
    return zip_of([(f"cat/{i}.txt", b"") for i in range(own_photos.ZIP_MAX_MEMBERS + 1)])


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# name -> (zip bytes, ("error", key) | ("classes", {class: count}, {skip reason: count}))
ZIP_CASES = {
    "traversal": (lambda: zip_of(two_classes() + [(f"../{TOKEN}.png", png((0, 0, 0))),
                                                  (f"cat/../../../{TOKEN}.png", png((0, 0, 0)))]),
                  ("classes", {"cat": 6, "dog": 6}, {"unsafe_path": 2})),
    "absolute": (lambda: zip_of(two_classes() + [(f"/tmp/{TOKEN}.png", png((0, 0, 0))),
                                                 (f"C:/{TOKEN}.png", png((0, 0, 0)))]),
                 ("classes", {"cat": 6, "dog": 6}, {"unsafe_path": 2})),
    "symlink": (lambda: zip_of(two_classes() + [symlink(f"cat/{TOKEN}.png", b"/etc/passwd")]),
                ("classes", {"cat": 6, "dog": 6}, {"link": 1})),
    "nested": (lambda: zip_of(two_classes() + [("cat/more.zip", zip_of(two_classes())),
                                               ("dog/sneaky.png", zip_of(two_classes()))]),
               ("classes", {"cat": 6, "dog": 6}, {"nested_archive": 2})),
    "non_images": (lambda: zip_of(two_classes() + [("cat/notes.txt", b"hello"), ("dog/readme.md", b"# hi"),
                                                   ("dog/cut.png", png((1, 2, 3))[:40]), (".DS_Store", b"x"),
                                                   ("__MACOSX/cat/._0.png", b"x")]),
                   ("classes", {"cat": 6, "dog": 6}, {"not_image": 3})),
    "bomb": (lambda: zip_bomb(20), ("error", "zip_bomb")),  # unpacking is stopped at 8 MB: no photo packs 1000:1
    "bomb_admitting_its_size": (lambda: zip_bomb(200), ("classes", {"cat": 6, "dog": 6}, {"too_big": 1})),
    "bomb_lying_about_its_size": (lambda: zip_bomb(200, lie=True), ("error", "zip_corrupt")),
    "too_many_files": (too_many_files, ("error", "zip_too_many_files")),
    "single_class": (lambda: zip_of(two_classes()[:6]), ("error", "own_need_two_classes")),
    "not_a_zip": (lambda: b"PK but not really a zip archive", ("error", "zip_corrupt")),
    "empty_folder": (lambda: zip_of(two_classes() + [("bird/", b""), ("bird/notes.txt", b"no photos here")]),
                     ("classes", {"cat": 6, "dog": 6}, {"not_image": 1})),
    "duplicate_names": (lambda: zip_of(two_classes("Cat", "dog")[:3] + two_classes("cat", "dog")[3:]),
                        ("classes", {"Cat": 6, "dog": 6}, {})),
    "korean_names": (lambda: zip_of(two_classes("고양이", "강아지", 3)  # and again decomposed, as macOS writes it
                                    + two_classes(nfd("고양이"), nfd("강아지"), 3)),
                     ("classes", {"강아지": 6, "고양이": 6}, {})),
}


def upload_zip(at: AppTest, name: str, data: bytes) -> None:
    at.file_uploader(key="train_own_zip").set_value((name, data, "application/zip"))
    at.run()


def counts_and_skips(at: AppTest) -> tuple[dict[str, int], dict[str, int]]:
    """The photo counts per class and the files left out per reason, as the page shows them."""
    counts, skips = {}, {}
    reasons = {t("en", f"own.skip.{r}"): r for r in own_photos.SKIP_REASONS}
    for frame in (d.value for d in at.dataframe):
        columns = list(frame.columns)
        if columns == [t("en", "trainpage.own.class"), t("en", "trainpage.own.count")]:
            counts = dict(zip(frame.iloc[:, 0], frame.iloc[:, 1].astype(int)))
        elif columns == [t("en", "trainpage.own.file"), t("en", "trainpage.own.reason")]:
            for reason in frame.iloc[:, 1]:
                skips[reasons[reason]] = skips.get(reasons[reason], 0) + 1
    return counts, skips


def zip_problems(at: AppTest, expected: tuple) -> list[str]:
    problems = [f"exception {[e.value for e in at.exception]}"] if at.exception else []
    counts, skips = counts_and_skips(at)
    if expected[0] == "error":
        if len(at.error) != 1 or not is_message(at.error[0].value, "en", expected[1], escaped=True):
            problems.append(f"errors {[e.value for e in at.error]} are not error.{expected[1]}")
        if not at.button(key="train_start").disabled:
            problems.append("Train is enabled without a dataset")
        return problems
    if at.error:
        problems.append(f"errors {[e.value for e in at.error]}")
    if (counts, skips) != expected[1:]:
        problems.append(f"shows {counts} and skipped {skips}, not {expected[1:]}")
    if skips and not any(w.value == t("en", "own.skipped", count=sum(skips.values())) for w in at.warning):
        problems.append(f"no warning counting {sum(skips.values())} files left out")
    if at.button(key="train_start").disabled:
        problems.append("Train is disabled")
    return problems


def test_hostile_zips_give_clear_messages_write_nothing_and_the_session_goes_on(at, tmp_path):
    at.selectbox(key="train_dataset").set_value("own_photos").run()
    at.radio(key="train_own_mode").set_value("zip").run()
    good = zip_of(two_classes())
    problems = []
    for name, (make, expected) in ZIP_CASES.items():
        upload_zip(at, f"{name}.zip", make())
        problems += [f"{name}: {p}" for p in zip_problems(at, expected)]
        upload_zip(at, "good.zip", good)
        problems += [f"{name}, then a good zip: {p}"
                     for p in zip_problems(at, ("classes", {"cat": 6, "dog": 6}, {}))]
    assert problems == []
    no_file_got_out(tmp_path)


def test_zip_bombs_are_refused_while_memory_stays_far_below_their_size(at):
    at.selectbox(key="train_dataset").set_value("own_photos").run()
    at.radio(key="train_own_mode").set_value("zip").run()
    for name in ("bomb", "bomb_admitting_its_size", "bomb_lying_about_its_size"):
        make, expected = ZIP_CASES[name]
        bomb = make()
        assert len(bomb) < 2**20
        tracemalloc.start()
        try:
            upload_zip(at, f"{name}.zip", bomb)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert zip_problems(at, expected) == [], name
        assert peak < 64 * 2**20, f"{name}: peak {peak / 2**20:.0f} MB while reading a zip that unpacks to 200 MB"


def test_a_folder_upload_skips_climbing_and_absolute_names_and_non_images(at, tmp_path):
    at.selectbox(key="train_dataset").set_value("own_photos").run()
    at.radio(key="train_own_mode").set_value("folder").run()
    files = [(f"photos/{name}", data, "image/png") for name, data in two_classes()]
    files += [(f"photos/../{TOKEN}.png", png((0, 0, 0)), "image/png"),
              (f"/etc/{TOKEN}.png", png((0, 0, 0)), "image/png"),
              ("photos/cat/notes.txt", b"not a photo", "text/plain"),
              ("photos/loose.png", png((9, 9, 9)), "image/png")]
    at.file_uploader(key="train_own_folder").set_value(files)
    at.run()
    assert zip_problems(at, ("classes", {"cat": 6, "dog": 6},
                             {"unsafe_path": 2, "not_image": 1, "no_class_folder": 1})) == []
    no_file_got_out(tmp_path)


def add_class(at: AppTest, name: str) -> int:
    at.text_input(key="train_own_new_class").set_value(name)
    at.button(key="train_own_add").click().run()
    return at.session_state["train_own_classes"][-1]["id"]


def test_classes_by_name_an_empty_class_is_named_and_duplicates_merge(at):
    at.selectbox(key="train_dataset").set_value("own_photos").run()
    cat, dog, bird = add_class(at, "Cat"), add_class(at, "개"), add_class(at, "<b>새</b>")
    at.file_uploader(key=f"train_own_files_{cat}").set_value([(f"{i}.png", png((230, 30, 30), i), "image/png")
                                                              for i in range(4)])
    at.file_uploader(key=f"train_own_files_{dog}").set_value([(f"{i}.png", png((30, 30, 230), i), "image/png")
                                                              for i in range(4)])
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and is_message(at.error[0].value, "en", "own_empty_class", escaped=True)
    assert "<b>새</b>" in at.error[0].value.replace("\\", "")  # the class is named, as plain text
    assert at.button(key="train_start").disabled
    again = add_class(at, "cat")  # the same name but for case: its photos join "Cat"
    at.button(key=f"train_own_remove_{bird}").click().run()
    at.file_uploader(key=f"train_own_files_{again}").set_value([("x.png", png((200, 60, 60), 7), "image/png")])
    at.run()
    assert not at.exception and not at.error
    assert counts_and_skips(at) == ({"Cat": 5, "개": 4}, {})
    assert not at.button(key="train_start").disabled


# --- model files ---

class _Touch:
    """Unpickling this creates `marker`: proof that a loader ran code from the file."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


CONFIG = CNNConfig(in_channels=1, input_size=8, filters=(2,), classes=("a", "b"))
SPEC = InputSpec("resize", 1, 8, (0.5,), (0.5,))


def good_model() -> bytes:
    return modelfile.to_bytes(LoadedModel("good", CNN(CONFIG), SPEC))


def with_record(change=None, state_change=None) -> bytes:
    record = modelfile.model_record("bad", CONFIG, SPEC)
    state = {k: v.contiguous() for k, v in CNN(CONFIG).state_dict().items()}
    if change:
        change(record)
    if state_change:
        state_change(state)
    return save_tensors(state, metadata={"imageai": json.dumps(record)})


def pickle_payload(marker: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"conv1.weight": _Touch(marker), "conv1.bias": torch.zeros(2)}, buf)
    return buf.getvalue()


def model_cases(marker: Path) -> dict[str, tuple[bytes, str]]:
    good = good_model()
    return {
        "pickle.safetensors": (pickle_payload(marker), "model_not_safetensors"),
        "shapes.safetensors": (with_record(state_change=lambda s: s.update(
            {"conv1.weight": s["conv1.weight"].reshape(1, 2, 3, 3).contiguous()})), "model_shape_mismatch"),
        "no-record.safetensors": (save_tensors({k: v.contiguous() for k, v in CNN(CONFIG).state_dict().items()}),
                                  "model_not_imageai"),
        "missing.safetensors": (with_record(lambda r: r.pop("input")), "model_bad_metadata"),
        "contradicts.safetensors": (with_record(lambda r: r.update(classes=["a", "b", "c"])), "model_bad_metadata"),
        "cut.safetensors": (good[: len(good) // 2], "model_not_safetensors"),
        "huge.safetensors": (good + bytes(modelfile.MAX_FILE_BYTES + 1 - len(good)), "model_too_big"),
    }


def model_file_problems(at: AppTest, key: str, cases: dict[str, tuple[bytes, str]]) -> list[str]:
    """Upload each bad model file then the good one; returns every problem, each naming its case."""
    problems = []
    for name, (data, expected) in cases.items():
        before = dict(at.session_state["user_models"])
        at.file_uploader(key=key).set_value((name, data, "application/octet-stream"))
        at.run()
        if at.exception:
            problems.append(f"{name}: exception {[e.value for e in at.exception]}")
        if len(at.error) != 1 or not is_message(at.error[0].value, "en", expected):
            problems.append(f"{name}: errors {[e.value for e in at.error]} are not error.{expected}")
        if at.session_state["user_models"] != before:
            problems.append(f"{name}: joined the session's models")
        at.file_uploader(key=key).set_value(("good.safetensors", good_model(), "application/octet-stream"))
        at.run()
        if at.exception or at.error or len(at.session_state["user_models"]) != len(before) + 1:
            problems.append(f"{name}: the good file after it did not load")
    return problems


def test_hostile_model_files_on_the_train_page_give_clear_messages_and_run_no_code(at, tmp_path):
    marker = tmp_path / f"pwned-{TOKEN}"
    cases = model_cases(marker)
    assert model_file_problems(at, "train_model_file", cases) == []
    assert not marker.exists()
    no_file_got_out(tmp_path)


def test_hostile_model_files_on_the_explore_page_give_clear_messages_and_run_no_code(at, tmp_path):
    at.switch_page(EXPLORE_PAGE).run()
    marker = tmp_path / f"pwned-{TOKEN}"
    assert model_file_problems(at, "explore_model_file", model_cases(marker)) == []
    assert not marker.exists()
    assert at.session_state["explore_model"].startswith("user-")  # the good file became the chosen model
    assert at.text[0].value == "a, b"


# --- training faults ---

def test_a_diverging_learning_rate_says_to_lower_it_and_a_sane_one_then_trains(at):
    at.number_input(key="train_epochs_digits").set_value(2)
    at.select_slider(key="train_learning_rate_digits").set_value(1.0)  # the highest the page offers
    at.button(key="train_start").click().run()
    wait_until_trained(at)
    assert not at.exception
    assert len(at.error) == 1 and is_message(at.error[0].value, "en", "training_diverged", escaped=True)
    assert "1.0" in at.error[0].value.replace("\\", "")
    assert at.session_state["user_models"] == {} and not at.metric
    at.select_slider(key="train_learning_rate_digits").set_value(2e-3)
    at.number_input(key="train_epochs_digits").set_value(1)
    at.button(key="train_start").click().run()
    wait_until_trained(at)
    assert not at.exception and not at.error
    assert at.metric[0].value.endswith("%") and len(at.session_state["user_models"]) == 1


def test_a_batch_larger_than_the_whole_dataset_trains_in_one_batch_per_epoch(at):
    at.selectbox(key="train_dataset").set_value("own_photos").run()
    at.radio(key="train_own_mode").set_value("zip").run()
    upload_zip(at, "photos.zip", zip_of(two_classes()))
    at.select_slider(key="train_batch_size_own_photos").set_value(256)
    at.number_input(key="train_epochs_own_photos").set_value(2)
    at.button(key="train_start").click().run()
    wait_until_trained(at)
    assert not at.exception and not at.error
    job = at.session_state["train_handle"].job
    assert job.state is jobs.JobState.DONE and len(job.view().batch_points) == 2  # one batch per epoch
    assert at.metric[0].value.endswith("%")


def start_long_training(at: AppTest) -> jobs.TrainingJob:
    at.number_input(key="train_epochs_digits").set_value(100)
    at.select_slider(key="train_batch_size_digits").set_value(8)
    at.button(key="train_start").click().run()
    job = at.session_state["train_handle"].job
    assert job.state.active and not at.exception
    return job


def test_pressing_stop_many_times_stops_once_and_keeps_the_model(at):
    job = start_long_training(at)
    presses = 0
    while presses < 5 and any(b.key == "train_stop" for b in at.button):
        at.button(key="train_stop").click().run()
        presses += 1
        assert not at.exception
    job.stop()  # and once more from outside, after the end
    wait_until_trained(at)
    assert presses >= 1 and job.state is jobs.JobState.STOPPED
    assert not at.exception and not at.error
    assert len(at.session_state["user_models"]) == 1 and at.metric[0].value.endswith("%")


def test_a_second_training_in_the_same_session_is_not_started_and_the_first_goes_on(at, monkeypatch):
    first = start_long_training(at)
    try:
        button = at.button(key="train_start")
        assert button.disabled
        # A second click that left the browser before the disabled button arrived. AppTest will not click a
        # disabled button, so its check is lifted for this one click; Streamlit then discards the click on the
        # server, and JobHandle.start would refuse it anyway (error.train_job_running, see test_jobs.py).
        monkeypatch.setattr(type(button), "_assert_can_interact", lambda self: None)
        button.click().run()
        assert not at.exception and not at.error
        assert at.session_state["train_handle"].job is first and first.state.active
        assert jobs._manager.counts() == (1, 0)
    finally:
        first.stop()
    wait_until_trained(at)
    at.number_input(key="train_epochs_digits").set_value(1)
    at.button(key="train_start").click().run()  # allowed once the first has ended
    wait_until_trained(at)
    assert not at.exception and not at.error
    assert at.session_state["train_handle"].job is not first and len(at.session_state["user_models"]) == 2

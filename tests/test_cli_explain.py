"""`explain IMAGE`: text and JSON output for a real model file and PNG; bad input exits 2 with one stderr line."""
import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("imageai.images")
pytest.importorskip("imageai.preprocess")

from imageai import cli_explain, modelfile  # noqa: E402
from imageai.errors import ImageReadError, ModelFileError  # noqa: E402
from imageai.images import read_image  # noqa: E402
from imageai.model import CNN, CNNConfig, stage_shapes  # noqa: E402
from imageai.modelfile import InputSpec, LoadedModel  # noqa: E402
from imageai.preprocess import prepare  # noqa: E402
from imageai.report import build_report  # noqa: E402
from imageai.trace import trace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = CNNConfig(in_channels=3, input_size=24, filters=(4, 6), classes=("circle", "square", "triangle"))
SPEC = InputSpec("resize", 3, 24, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A random model file and a small PNG picture, written in their real on-disk formats."""
    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    modelfile.save(LoadedModel("tiny-shapes", CNN(CONFIG).eval(), SPEC), folder / "tiny.safetensors")
    pixels = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "picture.png")
    (folder / "notes.txt").write_text("not a picture")
    (folder / "broken.safetensors").write_bytes(b"\x00" * 64)
    return folder


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="imageai")
    cli_explain.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["explain", *argv])
    code = args.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def _expected(files):
    loaded = modelfile.load(files / "tiny.safetensors")
    prepared = prepare(read_image((files / "picture.png").read_bytes()), loaded.input_spec)
    return loaded, trace(loaded.model, prepared.tensor)


def test_text_output_gives_the_prediction_and_every_stage_shape(files, capsys):
    code, out, err = _run([str(files / "picture.png"), "--model", str(files / "tiny.safetensors")], capsys)
    assert (code, err) == (0, "")
    loaded, expected = _expected(files)
    index = expected.prediction
    assert f"prediction: {CONFIG.classes[index]} (probability {expected.probabilities[index]:.4f})" in out
    lines = out.splitlines()
    for name, shape in stage_shapes(CONFIG).items():
        text = "x".join(map(str, shape))
        assert any(line.split()[:2] == [name, text] for line in lines), (name, text)
    assert any(line.split()[:2] == ["conv1", "4x24x24"] for line in lines)


def test_json_output_is_the_report_of_the_same_trace(files, capsys):
    code, out, err = _run([str(files / "picture.png"), "--model", str(files / "tiny.safetensors"), "--json"],
                          capsys)
    assert (code, err) == (0, "")
    loaded, expected = _expected(files)
    report = json.loads(out)
    assert report == build_report(expected, "tiny-shapes", CONFIG.classes, values=False)
    assert "values" not in report["stages"][0]


def test_values_flag_implies_json_with_values_and_weights(files, capsys):
    code, out, _ = _run([str(files / "picture.png"), "--model", str(files / "tiny.safetensors"), "--values"],
                        capsys)
    assert code == 0
    stages = {s["name"]: s for s in json.loads(out)["stages"]}
    assert np.array(stages["input"]["values"]).shape == (3, 24, 24)
    assert np.array(stages["conv1"]["weight"]).shape == (4, 3, 3, 3)
    assert np.array(stages["dense"]["bias"]).shape == (3,)


def test_the_default_model_is_digits():
    parser = argparse.ArgumentParser()
    cli_explain.add_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["explain", "x.png"]).model == "digits"


def _assert_one_line_error(code: int, out: str, err: str, expected: str | None = None) -> None:
    assert code == 2 and out == ""
    assert err.endswith("\n") and err.count("\n") == 1 and err.strip()
    assert "Traceback" not in err
    if expected is not None:
        assert err.strip() == expected


def test_a_missing_image_exits_2_with_one_line_naming_it(files, capsys):
    missing = str(files / "nowhere.png")
    code, out, err = _run([missing, "--model", str(files / "tiny.safetensors")], capsys)
    _assert_one_line_error(code, out, err)
    assert missing in err and "no such file" in err.lower()


def test_a_named_pipe_or_a_folder_is_refused_without_waiting_to_read_it(files, tmp_path, capsys):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)  # opening it to read would wait for a writer forever
    for path in (pipe, tmp_path):
        code, out, err = _run([str(path), "--model", str(files / "tiny.safetensors")], capsys)
        _assert_one_line_error(code, out, err)
        assert str(path) in err and "not a regular file" in err


def test_a_file_that_is_not_an_image_exits_2_with_the_catalog_message(files, capsys):
    with pytest.raises(ImageReadError) as raised:
        read_image(b"not a picture", name="notes.txt")
    code, out, err = _run([str(files / "notes.txt"), "--model", str(files / "tiny.safetensors")], capsys)
    _assert_one_line_error(code, out, err, raised.value.message("en"))


def test_a_broken_model_file_exits_2_with_the_catalog_message(files, capsys):
    with pytest.raises(ModelFileError) as raised:
        modelfile.load(files / "broken.safetensors")
    code, out, err = _run([str(files / "picture.png"), "--model", str(files / "broken.safetensors")], capsys)
    _assert_one_line_error(code, out, err, raised.value.message("en"))


def test_a_missing_model_file_exits_2(files, capsys):
    code, out, err = _run([str(files / "picture.png"), "--model", str(files / "none.safetensors")], capsys)
    _assert_one_line_error(code, out, err, ModelFileError("model_unreadable").message("en"))


def _module_cli(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "imageai", "explain", *argv], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def test_python_m_imageai_explain_runs_end_to_end_and_fails_cleanly(files):
    pytest.importorskip("imageai.cli_train")
    good = _module_cli(str(files / "picture.png"), "--model", str(files / "tiny.safetensors"), "--json")
    assert good.returncode == 0, good.stderr
    assert json.load(io.StringIO(good.stdout))["model"] == "tiny-shapes"
    bad = _module_cli(str(files / "notes.txt"), "--model", str(files / "tiny.safetensors"))
    _assert_one_line_error(bad.returncode, bad.stdout, bad.stderr)


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_a_bundled_model_explains_a_picture_by_name(name, files, capsys):
    from imageai import registry

    if not registry.bundled_path(name).exists():
        pytest.skip(f"bundled model {name} not built yet (make models)")
    picture = Image.new("RGB", (64, 64), "white")
    picture.paste((0, 0, 0), (28, 8, 36, 56))  # a dark bar: a "1" for digits, some shape for shapes
    picture.save(files / f"bar-{name}.png")
    argv = [str(files / f"bar-{name}.png"), "--json"] + ([] if name == "digits" else ["--model", name])
    code, out, err = _run(argv, capsys)
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["classes"] == list(registry.load_bundled(name).classes)
    assert report["prediction"]["class"] in report["classes"]

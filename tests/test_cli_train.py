"""`python -m imageai train`: writes a loadable model, shows progress, rejects bad settings with exit 2."""
import pytest
import torch

from imageai import cli_train, modelfile
from imageai.cli import main
from imageai.errors import TrainingError
from imageai.train import default_config

QUICK = ["--limit", "160", "--epochs", "1", "--filters", "4"]


@pytest.fixture(autouse=True)
def keep_thread_count():
    threads = torch.get_num_threads()  # the CLI sets it for the whole process
    yield
    torch.set_num_threads(threads)


def test_train_writes_a_model_that_loads(tmp_path, capsys):
    out = tmp_path / "digits.safetensors"
    assert main(["train", "--dataset", "digits", "--out", str(out), "--device", "cpu", *QUICK]) == 0
    loaded = modelfile.load(out)
    assert loaded.name == "digits" and loaded.classes == tuple("0123456789")
    assert loaded.meta["dataset"]["name"] == "digits" and loaded.meta["dataset"]["train"] == 160
    assert loaded.meta["training"]["epochs"] == 1 and loaded.meta["training"]["filters"] == 4
    assert 0 <= loaded.meta["accuracy"]["test"] <= 1 and loaded.meta["accuracy"]["test_images"] == 160
    captured = capsys.readouterr()
    assert "test accuracy" in captured.out and str(out) in captured.out
    assert "\r" in captured.err and "epoch 1/1" in captured.err  # the progress bar goes to stderr


def test_options_override_the_dataset_defaults(tmp_path):
    out = tmp_path / "m.safetensors"
    args = ["train", "--dataset", "digits", "--out", str(out), "--device", "cpu", *QUICK, "--batch-size", "40",
            "--lr", "0.01", "--optimizer", "sgd", "--blocks", "1", "--no-augment", "--no-lr-decay",
            "--val-share", "0", "--seed", "5", "--threads", "1"]
    assert main(args) == 0
    training = modelfile.load(out).meta["training"]
    assert training == {**default_config("digits").__dict__, "epochs": 1, "filters": 4, "batch_size": 40,
                        "learning_rate": 0.01, "optimizer": "sgd", "blocks": 1, "augment": False,
                        "lr_decay": False, "val_share": 0.0, "seed": 5}


def test_shapes_dataset_trains_from_the_command_line(tmp_path):
    out = tmp_path / "shapes.safetensors"
    assert main(["train", "--dataset", "shapes", "--out", str(out), "--device", "cpu", "--limit", "60",
                 "--epochs", "1", "--blocks", "1", "--filters", "2"]) == 0
    assert modelfile.load(out).classes == ("circle", "square", "triangle", "star", "cross", "heart")


@pytest.mark.parametrize("bad", [["--blocks", "4"], ["--epochs", "0"], ["--lr", "-1"], ["--val-share", "0.9"],
                                 ["--filters", "0"], ["--threads", "0"],
                                 ["--threads", "100000"]])  # thousands of OpenMP threads crash the process
def test_bad_settings_exit_2_with_one_line(tmp_path, capsys, bad):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "digits", "--out", str(out), *bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("The training setting '")  # the catalog's words, naming it
    assert not out.exists()


def test_missing_output_folder_exits_2_before_training(tmp_path, capsys):
    out = tmp_path / "nope" / "m.safetensors"
    assert main(["train", "--dataset", "digits", "--out", str(out)]) == 2
    expected = TrainingError("train_output_no_folder", path=str(out)).message("en")
    assert capsys.readouterr().err.strip() == expected


def test_an_output_path_that_is_a_folder_exits_2_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_train, "train", lambda *a, **k: pytest.fail("trained before checking the output path"))
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path)]) == 2
    expected = TrainingError("train_output_unwritable", path=str(tmp_path), reason="it is a folder").message("en")
    assert capsys.readouterr().err.strip() == expected


@pytest.mark.parametrize("bad", [["--optimizer", "rmsprop"], ["--dataset", "cats"], ["--epochs", "two"]])
def test_unknown_choices_are_refused_by_the_parser(tmp_path, bad):
    args = ["train", "--dataset", "digits", "--out", str(tmp_path / "m.safetensors"), *bad]
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2


def test_out_is_required():
    with pytest.raises(SystemExit) as caught:
        main(["train", "--dataset", "digits"])
    assert caught.value.code == 2

"""The training loop: it learns, reports, stops, catches divergence, is seeded, and saves a full record."""
import math
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imageai import modelfile, own_photos, registry
from imageai.datasets import load_digits, load_shapes
from imageai.errors import TrainingError
from imageai.modelfile import InputSpec
from imageai.model import CNN, CNNConfig
from imageai.train import (RECENT_KEEP, Progress, Recent, TrainConfig, _Loop, default_config, evaluate, init_weights,
                           shift, to_tensor, train)

TINY = TrainConfig(epochs=2, batch_size=32, filters=4, augment=False, val_share=0.25, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_digits().limited(256)


def run(dataset, config=TINY, **kwargs):
    return train(dataset, config, device="cpu", **kwargs)


def test_loss_falls_and_accuracy_rises_on_a_small_set(digits):
    result = run(digits, replace(TINY, epochs=6, learning_rate=5e-3, filters=8))
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert last["train_acc"] > first["train_acc"] + 0.4


def test_progress_reports_every_batch_each_epoch_and_the_end(digits):
    reports: list[Progress] = []
    run(digits, callback=reports.append)
    batches = [p for p in reports if p.kind == "batch"]
    per_epoch = math.ceil(192 / 32)  # 256 images, a quarter held back for validation
    assert len(batches) == 2 * per_epoch and [p.done for p in batches] == list(range(1, 2 * per_epoch + 1))
    assert batches[-1].seen == 2 * 192 and batches[-1].total == 2 * per_epoch
    epochs = [p for p in reports if p.kind == "epoch"]
    assert [p.epoch for p in epochs] == [1, 2] and all(0 <= p.val_acc <= 1 for p in epochs)
    assert reports[-1].kind == "done" and reports[-1].test_acc is not None


def test_live_numbers_average_the_recent_batches_across_epoch_boundaries(digits):
    reports: list[Progress] = []
    run(digits, callback=reports.append)
    batches = [p for p in reports if p.kind == "batch"]  # 6 batches of 32 per epoch
    own_loss, own_acc = [], []  # each batch's own numbers, recovered from its epoch's running means
    for p, before in zip(batches, [None] + batches[:-1]):
        first = p.batch == 1
        own_loss.append(p.train_loss * p.batch - (0 if first else before.train_loss * before.batch))
        own_acc.append(p.train_acc * p.batch - (0 if first else before.train_acc * before.batch))
    for n, p in enumerate(batches, start=1):
        weights = RECENT_KEEP ** np.arange(n - 1, -1, -1)  # the newest batch weighs most; epochs do not reset it
        assert p.recent_loss == pytest.approx(np.dot(weights, own_loss[:n]) / weights.sum())
        assert p.recent_acc == pytest.approx(np.dot(weights, own_acc[:n]) / weights.sum())
    assert batches[6].recent_loss != pytest.approx(batches[6].train_loss)  # epoch 2 starts where epoch 1 ended


def test_validation_numbers_are_torch_s_cross_entropy_and_accuracy_of_the_model_at_that_moment(digits):
    torch.manual_seed(0)
    model = CNN(CNNConfig(1, 28, (4,), digits.classes)).eval()
    x, y = to_tensor(digits.test_images[:100], digits.input_spec), torch.from_numpy(digits.test_labels[:100])
    loop = _Loop(model, TINY, False, torch.Generator().manual_seed(0), None, None)
    loop.epoch, loop.epoch_seen = 1, 1
    record = loop._end_epoch(x, y)
    with torch.no_grad():
        scores = model.scores(x)
    assert record["val_loss"] == pytest.approx(float(F.cross_entropy(scores, y)), rel=1e-5)
    assert record["val_acc"] == pytest.approx(float((scores.argmax(1) == y).float().mean()))


def test_recent_has_no_numbers_before_the_first_batch():
    assert all(math.isnan(v) for v in Recent().values())


def test_history_has_plain_epoch_records(digits):
    result = run(digits)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert set(result.history[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}
    assert all(isinstance(v, (int, float)) for h in result.history for v in h.values())


def test_no_validation_share_means_no_validation_numbers(digits):
    result = run(digits, replace(TINY, val_share=0.0, epochs=1))
    assert result.history[0]["val_acc"] is None and result.history[0]["val_loss"] is None


def test_stop_event_ends_training_and_keeps_the_model_so_far(digits):
    stop = threading.Event()
    done = []

    def callback(p):
        if p.kind == "batch":
            done.append(p.done)
            if p.done == 3:
                stop.set()

    result = run(digits, replace(TINY, epochs=5), callback=callback, stop=stop)
    assert result.stopped and done == [1, 2, 3]
    assert not np.allclose(result.loaded.model.first_kernels().numpy(), result.initial_kernels)
    assert not result.loaded.model.training and next(result.loaded.model.parameters()).device.type == "cpu"


def test_loss_that_stops_being_a_number_raises_training_diverged(digits):
    # A near-zero std makes the normalised pixels ~1e38: the scores overflow and the loss becomes NaN.
    broken = replace(digits, input_spec=InputSpec("mnist", 1, 28, (0.0,), (1e-38,)))
    with pytest.raises(TrainingError) as caught:
        run(broken, replace(TINY, learning_rate=0.5))
    assert caught.value.key == "training_diverged" and caught.value.params["lr"] == 0.5
    assert "0.5" in caught.value.message("en") and "0.5" in caught.value.message("ko")


def test_same_seed_gives_identical_weights(digits):
    config = replace(TINY, augment=True)
    a = run(digits, config).loaded.model.state_dict()
    b = run(digits, config).loaded.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_different_seed_gives_different_weights(digits):
    a = run(digits, TINY).loaded.model.state_dict()
    b = run(digits, replace(TINY, seed=1)).loaded.model.state_dict()
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"])


def test_training_leaves_the_global_random_state_alone(digits):
    before = torch.random.get_rng_state()
    run(digits, replace(TINY, epochs=1, augment=True))
    assert torch.equal(before, torch.random.get_rng_state())


def test_init_weights_follows_pytorch_default_bounds():
    from imageai.model import CNN, CNNConfig
    model = CNN(CNNConfig(filters=(8, 16)))
    init_weights(model, torch.Generator().manual_seed(0))
    for layer in (model.conv1, model.conv2, model.dense):
        bound = 1 / math.sqrt(layer.weight[0].numel())  # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), ..)
        for p in (layer.weight, layer.bias):
            assert p.abs().max() <= bound
        assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.15 * bound


def test_bad_settings_are_rejected_with_the_setting_named(digits):
    for bad in (dict(epochs=0), dict(blocks=4), dict(optimizer="rmsprop"), dict(learning_rate=-1.0),
                dict(val_share=0.9), dict(filters=0), dict(batch_size=0)):
        with pytest.raises(TrainingError) as caught:
            run(digits, replace(TINY, **bad))
        assert caught.value.key == "training_bad_setting" and caught.value.params["setting"] in bad


def test_sgd_optimizer_also_learns(digits):
    result = run(digits, replace(TINY, optimizer="sgd", learning_rate=0.05, epochs=4))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_blocks_and_filters_shape_the_network(digits):
    result = run(digits, replace(TINY, blocks=3, filters=2, epochs=1))
    assert result.loaded.config.filters == (2, 4, 8)
    assert result.initial_kernels.shape == (2, 1, 3, 3)


def test_to_tensor_scales_then_normalises_per_channel():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    spec = InputSpec("resize", 3, 4, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    x = to_tensor(images, spec)
    expected = (torch.tensor(images).permute(0, 3, 1, 2) / 255 - torch.tensor(spec.mean).view(1, 3, 1, 1)) \
        / torch.tensor(spec.std).view(1, 3, 1, 1)
    assert x.shape == (2, 3, 4, 4) and torch.allclose(x, expected)
    gray = to_tensor(images[..., 0], InputSpec("mnist", 1, 4, (0.1307,), (0.3081,)))
    assert gray.shape == (2, 1, 4, 4)
    assert torch.allclose(gray[:, 0], (torch.tensor(images[..., 0]) / 255 - 0.1307) / 0.3081)


def test_shift_moves_each_picture_without_mirroring_digits():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    out = shift(x, torch.Generator().manual_seed(0), mirror=False)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for b in range(2):
        crops = [padded[b, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[b], c) for c in crops)


def test_shift_with_mirror_flips_some_pictures_left_to_right():
    x = torch.arange(64 * 8 * 8, dtype=torch.float32).view(64, 1, 8, 8)
    out = shift(x, torch.Generator().manual_seed(0), mirror=True)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    flipped = 0
    for b in range(64):
        crops = [padded[b, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        if not any(torch.equal(out[b], c) for c in crops):
            assert any(torch.equal(out[b], c.flip(-1)) for c in crops)
            flipped += 1
    assert 10 < flipped < 54


def test_evaluate_matches_torch(digits):
    model = run(digits, replace(TINY, epochs=1)).loaded.model
    x = to_tensor(digits.test_images, digits.input_spec)
    acc, predictions, probabilities = evaluate(model, x, digits.test_labels)
    with torch.no_grad():
        expected = torch.softmax(model.scores(x), dim=1)
    assert np.allclose(probabilities, expected.numpy(), atol=1e-6)
    assert np.array_equal(predictions, expected.argmax(1).numpy())
    assert acc == pytest.approx((predictions == digits.test_labels).mean())


def test_confusion_matrix_agrees_with_test_accuracy(digits):
    result = run(digits)
    assert result.confusion.shape == (10, 10) and result.confusion.sum() == len(digits.test_labels)
    assert np.trace(result.confusion) / result.confusion.sum() == pytest.approx(result.test_accuracy)
    assert np.array_equal(result.confusion.sum(1), np.bincount(digits.test_labels, minlength=10))


def test_test_probabilities_are_the_trained_models_softmax_on_the_test_pictures(digits):
    result = run(digits)  # the Train page's confident-mistakes gallery is built from these
    with torch.no_grad():
        expected = torch.softmax(result.loaded.model.scores(to_tensor(digits.test_images, digits.input_spec)), 1)
    np.testing.assert_allclose(result.test_probs, expected.numpy(), atol=1e-5)


def test_model_record_survives_a_save_and_load(digits, tmp_path):
    result = run(digits)
    path = tmp_path / "m.safetensors"
    modelfile.save(result.loaded, path)
    loaded = modelfile.load(path)
    assert loaded.meta["dataset"]["name"] == "digits" and loaded.meta["dataset"]["train"] == 256
    assert loaded.meta["accuracy"] == {"test": result.test_accuracy, "test_images": 256}
    assert loaded.meta["training"] == {**TINY.__dict__}
    assert len(loaded.meta["history"]) == 2
    state = result.loaded.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in loaded.model.state_dict().items())


def test_shapes_train_with_mirroring_and_rgb_input():
    shapes = load_shapes(n_train=96, n_test=24)
    result = run(shapes, replace(TINY, augment=True, epochs=1))
    assert result.loaded.config.in_channels == 3 and result.loaded.classes == shapes.classes
    assert result.loaded.input_spec == shapes.input_spec


def test_default_configs_are_valid_and_differ_per_dataset():
    digits, shapes = default_config("digits"), default_config("shapes")
    digits.check()
    shapes.check()
    assert digits != shapes
    assert default_config("digits") is not default_config("digits")  # a fresh copy each time
    assert default_config("unknown") == TrainConfig()


def test_own_photo_defaults_learn_two_classes_from_twenty_photos_each():
    from bench.own_photos import photo_set  # phone-size JPEGs of a red mug and a blue book

    dataset = own_photos.to_dataset(own_photos.collect_from_classes(photo_set(20)))
    config = default_config("own_photos")
    assert len(dataset.train_labels) / config.batch_size >= 2  # several updates per epoch, not one
    assert run(dataset, config).test_accuracy >= 0.75  # 8 held-out photos; chance is 50%


@pytest.mark.parametrize("name,target", [("digits", 0.97), ("shapes", 0.98)])
def test_bundled_model_scores_its_recorded_accuracy_on_held_out_images(name, target):
    path = registry.bundled_path(name)
    if not path.exists():
        pytest.skip("bundled model not trained yet (make models)")
    loaded = modelfile.load(path)
    seed = loaded.meta["dataset"]["seed"]
    dataset = load_digits() if name == "digits" else load_shapes(seed=seed)
    x = to_tensor(dataset.test_images, loaded.input_spec)
    acc, _, _ = evaluate(loaded.model, x, dataset.test_labels)
    assert acc >= target
    assert acc == pytest.approx(loaded.meta["accuracy"]["test"], abs=1e-6)
    assert loaded.meta["accuracy"]["test_images"] == len(dataset.test_labels)
    assert loaded.meta["training"] == default_config(name).__dict__

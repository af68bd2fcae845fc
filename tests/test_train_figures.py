"""Tests for imageai.train_figures: curves, confusion matrix, kernels before/after and confident mistakes."""
from __future__ import annotations

import numpy as np
import torch

from imageai import train_figures as tf

CURVE_LABELS = {"loss": "Loss", "accuracy": "Accuracy", "train": "Training", "validation": "Validation",
                "epoch": "Epoch"}
HOSTILE = "<img src=x onerror=alert(1)>"


def batch_points(n: int, per_epoch: int = 10) -> list[dict]:
    return [{"epoch": (i + 1) / per_epoch, "loss": 1 / (i + 1), "accuracy": i / n} for i in range(n)]


def test_curves_show_training_per_batch_and_validation_per_epoch_in_two_panels():
    epochs = [{"epoch": 1.0, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75},
              {"epoch": 2.0, "loss": 0.3, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.85}]
    fig = tf.curves(batch_points(20), epochs, CURVE_LABELS)
    loss_train, loss_val, acc_train, acc_val = fig.data
    assert list(loss_train.x) == [(i + 1) / 10 for i in range(20)]
    assert list(loss_val.y) == [0.6, 0.4] and list(acc_val.y) == [0.75, 0.85]
    assert list(acc_train.y) == [i / 20 for i in range(20)]
    assert (loss_train.xaxis, acc_train.xaxis) == ("x", "x2")
    assert [a.text for a in fig.layout.annotations] == ["Loss", "Accuracy"]
    assert {t.name for t in fig.data} == {"Training", "Validation"}


def test_curves_without_validation_or_points_still_draw():
    fig = tf.curves([], [{"epoch": 1.0, "loss": 0.5, "accuracy": 0.8, "val_loss": None, "val_accuracy": None}],
                    CURVE_LABELS)
    assert all(len(t.x) == 0 for t in fig.data)


def test_long_curves_are_thinned_but_keep_their_ends():
    points = batch_points(5000)
    thinned = tf.thin(points, 400)
    assert len(thinned) <= 400
    assert thinned[0] is points[0] and thinned[-1] is points[-1]
    assert len(tf.curves(points, [], CURVE_LABELS).data[0].x) <= tf.MAX_CURVE_POINTS


def test_confusion_matrix_writes_counts_with_class_names_made_inert():
    matrix = np.array([[5, 1, 0], [2, 7, 0], [0, 0, 9]])
    fig = tf.confusion(matrix, ["cat", "고양이", HOSTILE], {"true": "True", "predicted": "Predicted"})
    heat = fig.data[0]
    assert np.array_equal(np.asarray(heat.z), matrix) and np.array_equal(np.asarray(heat.text), matrix)
    assert list(heat.x) == ["cat", "고양이", "&lt;img src=x onerror=alert(1)&gt;"]
    assert all("<" not in name for name in heat.y)
    assert fig.layout.xaxis.title.text == "Predicted" and fig.layout.yaxis.title.text == "True"
    assert fig.layout.xaxis.type == "category"


def test_kernel_maps_keep_each_filters_channels_together():
    kernels = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3)
    maps = tf.kernel_maps(kernels)
    assert maps.shape == (12, 3, 3)
    assert np.array_equal(maps[1 * 3 + 2], kernels[1, 2])


def test_learned_and_initial_kernels_share_one_colour_scale():
    initial = np.random.default_rng(0).normal(size=(8, 1, 3, 3)).astype(np.float32)
    learned = initial * 3
    zmax = tf.shared_zmax(learned, initial)
    assert zmax == float(np.abs(learned).max())
    for k in (initial, learned):
        heat = tf.kernels_figure(k, zmax=zmax, title="t").data[0]
        assert (heat.zmin, heat.zmax) == (-zmax, zmax)
        z = np.asarray(heat.z, dtype=np.float32)
        assert np.array_equal(z[:3, :3], k[0, 0])  # the first tile is the first filter, values untouched


def test_confident_mistakes_are_the_wrong_predictions_ranked_by_confidence():
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(50, 4, generator=gen) * 3, dim=1).numpy()
    labels = torch.randint(0, 4, (50,), generator=gen).numpy()
    images = np.arange(50 * 2 * 2, dtype=np.uint8).reshape(50, 2, 2)
    found = tf.confident_mistakes(probs, labels, images, k=5)
    wrong = [i for i in range(50) if probs[i].argmax() != labels[i]]
    expected = sorted(wrong, key=lambda i: -probs[i].max())[:5]
    assert [int(m["image"][0, 0]) // 4 for m in found] == expected
    assert [m["true"] for m in found] == [int(labels[i]) for i in expected]
    assert [m["pred"] for m in found] == [int(probs[i].argmax()) for i in expected]
    assert np.allclose([m["confidence"] for m in found], [probs[i].max() for i in expected])
    assert tf.confident_mistakes(np.eye(3), np.arange(3), images[:3], k=5) == []

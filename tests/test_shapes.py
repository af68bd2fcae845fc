"""The shapes generator: deterministic, balanced, and each class a distinct, visible silhouette."""
import numpy as np
import pytest

from imageai import shapes


def test_same_seed_gives_identical_bytes():
    a_images, a_labels = shapes.generate(24, seed=7)
    b_images, b_labels = shapes.generate(24, seed=7)
    assert a_images.tobytes() == b_images.tobytes()
    assert np.array_equal(a_labels, b_labels)


def test_different_seed_gives_different_pictures():
    a, _ = shapes.generate(12, seed=1)
    b, _ = shapes.generate(12, seed=2)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("n", [60, 61, 5])
def test_classes_are_balanced_within_one(n):
    _, labels = shapes.generate(n, seed=0, size=16)
    counts = np.bincount(labels, minlength=len(shapes.CLASSES))
    assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_output_types_and_shapes():
    images, labels = shapes.generate(6, seed=0, size=24)
    assert images.shape == (6, 24, 24, 3) and images.dtype == np.uint8
    assert labels.shape == (6,) and labels.dtype == np.int64
    assert set(labels) <= set(range(len(shapes.CLASSES)))


def test_class_names_in_plan_order():
    assert shapes.CLASSES == ("circle", "square", "triangle", "star", "cross", "heart")


def test_every_class_has_its_own_silhouette():
    # Same random draws (size, position, angle) for every class: the silhouettes must still differ clearly.
    masks = {name: shapes._mask(name, 32, np.random.default_rng(3)) > 0.5 for name in shapes.CLASSES}
    for i, a in enumerate(shapes.CLASSES):
        assert masks[a].mean() > 0.05  # big enough to see at 32x32
        for b in shapes.CLASSES[i + 1:]:
            iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
            assert iou < 0.85, (a, b, iou)


def test_shape_colour_contrasts_with_background():
    rng = np.random.default_rng(0)
    luma = np.array([0.299, 0.587, 0.114])
    for _ in range(200):
        bg, fg = shapes._colours(rng)
        assert abs(luma @ bg - luma @ fg) >= shapes.MIN_CONTRAST


@pytest.mark.parametrize("seed", range(6))
def test_shape_pixels_stand_out_from_background_pixels(seed):
    shape = shapes.CLASSES[seed]
    picture = shapes.draw(shape, 32, np.random.default_rng(seed)).astype(float)
    replay = np.random.default_rng(seed)  # draw() takes the colours, then the mask, from its generator
    shapes._colours(replay)
    mask = shapes._mask(shape, 32, replay)
    luma = picture @ np.array([0.299, 0.587, 0.114])
    gap = abs(luma[mask > 0.9].mean() - luma[mask < 0.1].mean())
    assert gap > 0.6 * shapes.MIN_CONTRAST

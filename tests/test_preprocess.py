"""prepare(): pictures become exactly the tensor the model gets; MNIST-style for digits, centre square otherwise."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from bench.digit_photos import font_digits, make_phone_photo
from imageai.errors import ImageReadError
from imageai.images import read_image
from imageai.modelfile import InputSpec
from imageai.preprocess import MNIST_SPEC, batch_from_uint8, prepare, prepare_array, spec_for_rgb

FOUR = [[(0.35, 0.15), (0.2, 0.6), (0.7, 0.6)], [(0.6, 0.3), (0.6, 0.88)]]  # strokes of a "4", in [0, 1]


def digit_picture(size=(400, 500), ink=(25, 25, 40), paper=(235, 230, 215), width=14, strokes=FOUR):
    img = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(img)
    for line in strokes:
        draw.line([(x * size[0], y * size[1]) for x, y in line], fill=ink, width=width, joint="curve")
    return img


def unevenly_lit(img: Image.Image, seed: int = 0) -> Image.Image:
    """Light falling off to one corner, a soft shadow over the left third, and sensor noise."""
    pixels = np.asarray(img, np.float32)
    h, w = pixels.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    light = (1 - 0.4 * (xx / w + yy / h) / 2) * (1 - 0.3 / (1 + np.exp((xx - w / 3) / (0.04 * w))))
    noisy = pixels * light[..., None] + np.random.default_rng(seed).normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def mnist(img: Image.Image) -> np.ndarray:
    return prepare(img, MNIST_SPEC).pixels[0]  # (28, 28)


def ink_box(pixels: np.ndarray, level: float = 0.3) -> tuple[int, int]:
    rows, cols = np.nonzero(pixels > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0:pixels.shape[0], 0:pixels.shape[1]]
    return float((pixels * ys).sum() / pixels.sum()), float((pixels * xs).sum() / pixels.sum())


def blurred(pixels: np.ndarray) -> np.ndarray:
    scaled = (np.asarray(pixels, np.float32) / pixels.max() * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(scaled).filter(ImageFilter.GaussianBlur(1.5)), np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_dark_digit_on_unevenly_lit_paper_becomes_mnist_style():
    pixels = mnist(unevenly_lit(digit_picture()))
    assert pixels.shape == (28, 28) and pixels.dtype == np.float32
    assert pixels.max() == pytest.approx(1.0) and pixels.min() >= 0
    assert pixels[:3].max() < 0.05 and pixels[:, :3].max() < 0.05  # dark field around bright ink
    height, width = ink_box(pixels)
    assert height <= 20 and width <= 20 and max(height, width) >= 18
    cy, cx = centre_of_mass(pixels)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


def test_lighting_and_shadow_do_not_change_the_result_much():
    clean = mnist(digit_picture())
    assert similarity(mnist(unevenly_lit(digit_picture())), clean) > 0.9


def test_light_on_dark_drawing_keeps_its_polarity():
    drawn = mnist(digit_picture(ink=(255, 255, 255), paper=(0, 0, 0)))
    on_paper = mnist(digit_picture())
    assert drawn[:3].max() < 0.05 and drawn.max() == pytest.approx(1.0)
    assert similarity(drawn, on_paper) > 0.95


def test_specks_away_from_the_digit_are_ignored():
    clean = digit_picture()
    specked = clean.copy()
    draw = ImageDraw.Draw(specked)
    for x, y in [(20, 30), (370, 470), (380, 40), (30, 460)]:
        draw.ellipse((x, y, x + 3, y + 3), fill=(25, 25, 40))
    assert similarity(mnist(specked), mnist(clean)) > 0.98


def test_thin_pen_strokes_are_thickened_to_mnist_width():
    pixels = mnist(digit_picture(size=(600, 600), width=2))
    assert (pixels > 0.5).sum() >= 40  # two ~20 px strokes at least ~1.5 px wide


@pytest.mark.parametrize("picture", [
    Image.new("RGB", (300, 300), (230, 230, 220)),
    Image.new("RGB", (1, 1), "black"),
    unevenly_lit(Image.new("RGB", (300, 400), (230, 230, 220))),
])
def test_a_picture_without_ink_is_refused_clearly(picture):
    with pytest.raises(ImageReadError) as caught:
        prepare(picture, MNIST_SPEC)
    assert caught.value.key == "image_no_ink"


def test_phone_photos_of_digits_come_out_like_the_dataset_sample():
    digits, _ = font_digits()
    rng = np.random.default_rng(0)
    scores = []
    for digit in digits:  # some photos are turned a few degrees, some stored sideways with an EXIF tag
        pixels = mnist(read_image(make_phone_photo(digit, rng)))
        scores.append(similarity(blurred(pixels), blurred(digit)))  # blurred: a small turn is no mismatch
    assert min(scores) > 0.6 and np.mean(scores) > 0.8


def test_normalisation_is_pixels_minus_mean_over_std_exactly():
    for spec, img in [(MNIST_SPEC, digit_picture()), (spec_for_rgb(32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)),
                                                       unevenly_lit(digit_picture()))]:
        prepared = prepare(img, spec)
        mean = torch.tensor(spec.mean).view(-1, 1, 1)
        std = torch.tensor(spec.std).view(-1, 1, 1)
        assert torch.equal(prepared.tensor[0], (torch.from_numpy(prepared.pixels) - mean) / std)
        assert prepared.tensor.dtype == torch.float32


@pytest.mark.parametrize("channels, size", [(3, 32), (1, 28), (3, 64)])
def test_resize_gives_the_specs_shape(channels, size):
    spec = InputSpec("resize", channels, size, (0.5,) * channels, (0.25,) * channels)
    prepared = prepare(Image.new("RGB", (640, 480), "orange"), spec)
    assert prepared.tensor.shape == (1, channels, size, size)
    assert prepared.pixels.shape == (channels, size, size)
    assert 0 <= prepared.pixels.min() and prepared.pixels.max() <= 1


def test_resize_takes_the_centre_square():
    wide = Image.new("RGB", (300, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (100, 0, 200, 100))  # red centre square, blue on both sides
    pixels = prepare(wide, spec_for_rgb(16, (0, 0, 0), (1, 1, 1))).pixels
    assert pixels[0].min() > 0.9 and pixels[2].max() < 0.1  # the filter only reaches a little past the edge


def test_mnist_works_at_another_size():
    spec = InputSpec("mnist", 1, 32, (0.1307,), (0.3081,))
    pixels = prepare(digit_picture(), spec).pixels[0]
    assert pixels.shape == (32, 32) and max(ink_box(pixels)) <= 23


def test_original_is_kept_small_for_display():
    assert max(prepare(digit_picture(size=(1000, 800)), MNIST_SPEC).original.size) == 512


def test_dataset_digit_passes_through_unchanged():
    digit = font_digits()[0][7]
    prepared = prepare_array(digit, MNIST_SPEC)
    assert np.array_equal(np.round(prepared.pixels[0] * 255).astype(np.uint8), digit)
    assert torch.equal(prepared.tensor, batch_from_uint8(digit[None], MNIST_SPEC))


def test_sample_in_another_format_goes_through_preprocessing():
    spec = spec_for_rgb(32, (0.5,) * 3, (0.5,) * 3)
    prepared = prepare_array(font_digits()[0][3], spec)  # a 28x28 gray digit shown to an RGB model
    assert prepared.tensor.shape == (1, 3, 32, 32)


def test_batch_from_uint8_matches_per_image_preparation():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    spec = spec_for_rgb(16, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    batch = batch_from_uint8(rgb, spec)
    assert batch.shape == (5, 3, 16, 16)
    assert torch.equal(batch[2:3], prepare_array(rgb[2], spec).tensor)
    with pytest.raises(ValueError):
        batch_from_uint8(rgb, spec_for_rgb(28, (0.5,) * 3, (0.5,) * 3))


@pytest.mark.parametrize("picture", [
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)),  # noise
    Image.fromarray(((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)).convert("RGB"),  # checkerboard
    Image.linear_gradient("L").convert("RGB"),
    Image.new("RGB", (1, 500), "white"),
    Image.fromarray(np.pad(np.zeros((1, 1), np.uint8), 10, constant_values=255)).convert("RGB"),  # one dot
])
def test_odd_pictures_give_valid_pixels_or_a_clear_error(picture):
    for spec in (MNIST_SPEC, spec_for_rgb(32, (0.5,) * 3, (0.5,) * 3)):
        try:
            prepared = prepare(picture, spec)
        except ImageReadError as err:
            assert err.key == "image_no_ink"
            continue
        assert 0 <= prepared.pixels.min() and prepared.pixels.max() <= 1
        assert torch.isfinite(prepared.tensor).all()

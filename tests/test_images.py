"""read_image on every kind of odd file a user can upload: each one is built here, byte by byte if need be."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from imageai import images
from imageai.errors import ImageReadError
from imageai.i18n import catalog
from imageai.images import image_from_array, read_image, thumbnail_for_display, to_rgb


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Random RGB pixels: they compress badly, so the encoded file is long enough to cut."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def refused(data: bytes) -> ImageReadError:
    with pytest.raises(ImageReadError) as caught:
        read_image(data)
    return caught.value


def png_declaring(width: int, height: int) -> bytes:
    """A small real PNG whose IHDR claims another size, with the chunk's CRC made valid again."""
    data = bytearray(encode(Image.new("RGB", (8, 8)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 frame header claims another size."""
    data = bytearray(encode(Image.new("RGB", (8, 8), "gray"), "JPEG"))
    sof = data.index(b"\xff\xc0")  # marker, length (2), precision (1), height (2), width (2)
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_common_formats_are_read_as_rgb_with_their_colours():
    red = Image.new("RGB", (32, 24), (200, 30, 40))
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "GIF"):
        img = read_image(encode(red, fmt))
        assert img.mode == "RGB" and img.size == (32, 24), fmt
        assert np.abs(np.asarray(img, int)[12, 16] - (200, 30, 40)).max() <= 12, fmt


def test_phone_jpeg_with_extra_pictures_inside_is_read_as_its_main_picture():
    main, depth = Image.new("RGB", (32, 24), (10, 200, 30)), Image.new("RGB", (16, 12), "black")
    data = encode(main, "MPO", save_all=True, append_images=[depth])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    img = read_image(data)
    assert img.size == (32, 24) and np.abs(np.asarray(img, int)[12, 16] - (10, 200, 30)).max() <= 12


def test_empty_and_text_files_are_refused_by_content_not_name():
    assert refused(b"").key == "image_empty"
    assert refused(b"hello, I am a text file called photo.png\n" * 10).key == "image_not_image"


def test_other_formats_are_refused_with_their_name():
    assert refused(encode(Image.new("RGB", (8, 8)), "TIFF")).params["format"] == "TIFF"
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    assert refused(svg).params["format"] == "SVG"
    assert refused(b"%PDF-1.4\n%...").params["format"] == "PDF"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "hi")
    assert refused(archive.getvalue()).params["format"] == "ZIP"


def test_truncated_png_and_jpeg_are_corrupt_not_half_decoded():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    for fmt in ("PNG", "JPEG"):
        data = encode(noise(64, 64), fmt)
        assert refused(data[: len(data) // 2]).key == "image_corrupt", fmt


@pytest.mark.parametrize("make", [png_declaring, jpeg_declaring])
@pytest.mark.parametrize("side", [50_000, 9_000])  # 9000^2 = 81 MP: above our limit, below Pillow's own
def test_decompression_bombs_are_refused_from_the_header(make, side, monkeypatch):
    def no_decoding(self, *args):
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # our limit must not depend on Pillow's global
    err = refused(make(side, side))
    assert err.key == "image_too_many_pixels" and err.params["limit"] == 60


def test_bomb_is_refused_with_pillows_default_limit_and_leaves_it_alone():
    before = Image.MAX_IMAGE_PIXELS
    assert refused(png_declaring(50_000, 50_000)).params["megapixels"] == "2,500"
    assert Image.MAX_IMAGE_PIXELS == before


def test_48_megapixel_phone_jpeg_is_accepted_and_shrunk():
    photo = Image.linear_gradient("L").resize((8000, 6000)).convert("RGB")
    img = read_image(encode(photo, "JPEG", quality=60))
    assert img.size == (images.WORK_SIDE, images.WORK_SIDE * 3 // 4)


def test_file_over_the_size_limit_is_refused_before_opening(monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1000)
    err = refused(encode(noise(64, 64), "PNG"))
    assert err.key == "image_too_big_file"


@pytest.mark.parametrize("size, expected", [((1, 1), (1, 1)), ((1, 5000), (1, images.WORK_SIDE)),
                                            ((5000, 1), (images.WORK_SIDE, 1))])
def test_tiny_and_thin_images_are_accepted(size, expected):
    assert read_image(encode(Image.new("RGB", size, "white"), "PNG")).size == expected


def test_16_bit_gray_is_scaled_to_the_full_8_bit_range_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (4, 1))  # (4, 256)
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    gray = np.asarray(read_image(data))[..., 0]
    assert gray.min() == 0 and gray.max() == 255
    assert np.all(np.diff(gray[0].astype(int)) >= 0) and len(np.unique(gray)) > 200


@pytest.mark.parametrize("mode, dtype", [("I;16B", ">u2"), ("I", "<i4"), ("F", "<f4")])
def test_high_bit_modes_are_scaled_by_their_range(mode, dtype):
    values = np.linspace(-5 if mode != "I;16B" else 0, 4000, 64).astype(dtype).reshape(1, 64)
    gray = np.asarray(to_rgb(Image.frombytes(mode, (64, 1), values.tobytes())))[0, :, 0]
    assert gray[0] == 0 and gray[-1] == 255 and np.all(np.diff(gray.astype(int)) >= 0)


def test_cmyk_jpeg_keeps_its_colour():
    red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    pixel = np.asarray(read_image(encode(red, "JPEG")), int)[8, 8]
    assert np.abs(pixel - (255, 0, 0)).max() <= 12


def test_palette_transparency_becomes_white_in_png_and_gif():
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0, 20, 40, 200] + [0] * 762)
    img.paste(1, (0, 0, 5, 10))  # left half blue, right half index 0 = transparent
    for fmt in ("PNG", "GIF"):
        rgb = np.asarray(read_image(encode(img, fmt, transparency=0)))
        assert tuple(rgb[5, 8]) == (255, 255, 255), fmt
        assert tuple(rgb[5, 1]) == (20, 40, 200), fmt


def test_gray_with_alpha_is_composited_on_white():
    la = Image.merge("LA", (Image.new("L", (10, 10), 30), Image.new("L", (10, 10), 0)))
    la.paste((30, 255), (0, 0, 5, 10))
    rgb = np.asarray(read_image(encode(la, "PNG")))
    assert tuple(rgb[5, 1]) == (30, 30, 30) and tuple(rgb[5, 8]) == (255, 255, 255)


def test_fully_transparent_rgba_becomes_white():
    rgb = np.asarray(read_image(encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG")))
    assert rgb.min() == 255


def test_white_strokes_on_a_transparent_canvas_stay_visible_on_black():
    canvas = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    canvas.paste((255, 255, 255, 255), (8, 0, 12, 20))
    rgb = np.asarray(read_image(encode(canvas, "PNG")))
    assert tuple(rgb[10, 10]) == (255, 255, 255) and tuple(rgb[10, 2]) == (0, 0, 0)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert tuple(np.asarray(read_image(data))[4, 4]) == (255, 0, 0)


def test_exif_orientation_turns_the_picture_upright():
    stored = Image.new("RGB", (40, 20), "white")
    stored.paste((0, 0, 0), (0, 0, 20, 20))  # left half dark, as stored in the file
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    img = np.asarray(read_image(encode(stored, "JPEG", exif=exif.tobytes())).convert("L"))
    assert img.shape == (40, 20)
    assert img[:20].mean() < 60 and img[20:].mean() > 200  # the dark half is now on top


def test_heic_is_read_when_pillow_heif_can_encode_it():
    pillow_heif = pytest.importorskip("pillow_heif")
    try:
        heif = pillow_heif.from_pillow(Image.new("RGB", (64, 48), (20, 160, 60)))
        buf = io.BytesIO()
        heif.save(buf, quality=90)
    except Exception as err:  # a build without an HEVC encoder can still decode
        pytest.skip(f"pillow-heif cannot encode here: {err}")
    img = read_image(buf.getvalue())
    assert img.size == (64, 48) and np.abs(np.asarray(img, int)[24, 32] - (20, 160, 60)).max() <= 15


def test_heic_with_an_orientation_tag_is_turned_once_not_twice():
    pytest.importorskip("pillow_heif")
    stored = Image.new("RGB", (64, 32), "white")
    stored.paste((0, 0, 0), (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    assert images.heif_available()
    try:
        data = encode(Image.open(io.BytesIO(encode(stored, "JPEG", exif=exif.tobytes()))), "HEIF", quality=90)
    except Exception as err:
        pytest.skip(f"pillow-heif cannot encode here: {err}")
    img = np.asarray(read_image(data).convert("L"))
    assert img.shape == (64, 32) and img[:32].mean() < 60 and img[32:].mean() > 200


def test_png_followed_by_a_zip_is_read_as_the_png():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.txt", "x" * 100)
    picture = noise(16, 16)
    img = read_image(encode(picture, "PNG") + archive.getvalue())
    assert np.array_equal(np.asarray(img), np.asarray(picture))


def test_damaged_files_never_raise_anything_but_image_read_error():
    rng = np.random.default_rng(0)
    originals = [encode(noise(48, 32), fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP")]
    for _ in range(150):
        data = bytearray(originals[rng.integers(len(originals))])
        for pos in rng.integers(0, len(data), rng.integers(1, 8)):
            data[pos] = int(rng.integers(256))
        try:
            assert read_image(bytes(data)).mode == "RGB"
        except ImageReadError:
            pass


def test_every_error_key_has_a_message_in_both_languages():
    keys = ["image_empty", "image_not_image", "image_unsupported", "image_heic_missing", "image_corrupt",
            "image_too_many_pixels", "image_too_big_file", "image_no_ink"]
    for lang in ("en", "ko"):
        assert all(f"error.{k}" in catalog(lang) for k in keys), lang
    message = ImageReadError("image_too_many_pixels", megapixels="81", limit=60).message("ko")
    assert "81" in message and "60" in message


def test_image_from_array_and_thumbnail():
    assert image_from_array(np.zeros((5, 7), np.uint8)).size == (7, 5)
    rgba = np.zeros((4, 4, 4), np.uint8)
    assert np.asarray(image_from_array(rgba)).min() == 255
    with pytest.raises(ValueError):
        image_from_array(np.zeros((4, 4), np.float32))
    big = Image.new("RGB", (1000, 250))
    assert thumbnail_for_display(big, 200).size == (200, 50)
    small = Image.new("RGB", (20, 10))
    assert thumbnail_for_display(small, 200).size == (20, 10) and thumbnail_for_display(small, 200) is not small

"""The hostile-input corpus: odd and bad image files a class of phones and pranksters can upload, built in code,
and how to recognise the catalog message each refused one must end in.

Each case is a file name, its bytes and what ImageAi must do with it: "explains" (a prediction) or the catalog
error key (under `error.`) of the clear message it shows instead. The shapes model ("resize" preprocessing)
explains anything it can decode; the digits model ("mnist") also refuses a picture with no ink in it.
"""
from __future__ import annotations

import functools
import io
import re
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from imageai import images
from imageai.i18n import catalog
from tests.test_images import encode, jpeg_declaring, noise, png_declaring

EXPLAINS = "explains"


@dataclass(frozen=True)
class Case:
    name: str  # the uploaded file's name; the app reads the format from the bytes, never from this
    data: bytes
    expect: str  # EXPLAINS, or the error key for the shapes model
    digits: str | None = None  # what the digits model does instead, where it differs
    digit: str | None = None  # the digit the digits model must see, where the picture shows one

    def expect_for(self, model: str) -> str:
        return self.digits if model == "digits" and self.digits is not None else self.expect


def drawing(size: tuple[int, int] = (96, 96), mode: str = "RGB") -> Image.Image:
    """A dark '7' on light paper in any mode: something both bundled models can explain."""
    img = Image.new("RGB", size, (235, 230, 220))
    w, h = size
    ImageDraw.Draw(img).line([(w // 4, h // 4), (3 * w // 4, h // 4), (w // 2 - w // 10, 4 * h // 5)],
                             fill=(20, 20, 30), width=max(1, min(w, h) // 8))
    return img.convert(mode) if mode != "RGB" else img


def valid_png() -> bytes:
    """The picture uploaded after each hostile one, to show the session still works."""
    return encode(drawing((200, 200)), "PNG")


def truncated(fmt: str) -> bytes:
    data = encode(noise(64, 64), fmt)
    return data[: len(data) // 2]


@functools.lru_cache(maxsize=1)
def phone_photo_48mp() -> bytes:
    """An 8000x6000 JPEG at quality 85, as a 48 MP phone camera saves it (a few MB; made in about a second)."""
    return encode(drawing((400, 300)).resize((8000, 6000), Image.Resampling.NEAREST), "JPEG", quality=85)


def gray16() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))  # (64, 64)
    ramp[16:48, 28:36] = 2000  # a dark bar for the digits model
    return encode(Image.fromarray(ramp), "PNG")


def palette_with_transparency() -> bytes:
    img = Image.new("P", (48, 48), 0)
    img.putpalette([0, 0, 0, 20, 40, 200] + [0] * 762)
    img.paste(1, (20, 6, 28, 42))  # a blue bar on a transparent background
    return encode(img, "PNG", transparency=0)


def gray_alpha() -> bytes:
    la = Image.merge("LA", (Image.new("L", (48, 48), 30), Image.new("L", (48, 48), 0)))
    la.paste((30, 255), (20, 6, 28, 42))
    return encode(la, "PNG")


def animated_gif() -> bytes:
    frames = [drawing((48, 48))] + [Image.new("RGB", (48, 48), c) for c in ((0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """A '7' stored on its side, as a phone held upright stores it; the EXIF tag says how to turn it back."""
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    stored = drawing((60, 80)).transpose(Image.Transpose.ROTATE_90)  # (80, 60), turned counter-clockwise
    return encode(stored, "JPEG", exif=exif.tobytes())


def heic() -> bytes | None:
    """A real HEIC photo, or None where pillow-heif cannot encode (its decoder may still be there)."""
    try:
        import pillow_heif

        buf = io.BytesIO()
        pillow_heif.from_pillow(drawing((64, 48))).save(buf, quality=90)
        return buf.getvalue()
    except Exception:
        return None


def svg() -> bytes:
    return (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
            b'<script>alert(1)</script><rect width="64" height="64"/></svg>')


def polyglot() -> bytes:
    """A real PNG with a zip archive appended: image viewers show the PNG, unzip sees the archive."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.sh", "rm -rf ~\n")
    return encode(drawing((48, 48)), "PNG") + archive.getvalue()


def over_the_size_cap() -> bytes:
    """A valid PNG padded to one byte over images.MAX_FILE_BYTES (image viewers ignore bytes after IEND)."""
    head = encode(drawing((48, 48)), "PNG")
    return head + bytes(images.MAX_FILE_BYTES + 1 - len(head))


def image_corpus(*, include_big: bool = True) -> list[Case]:
    """Every case; `include_big` adds the 48 MP photo and the file over the size cap (tens of MB in memory)."""
    heic_data = heic()
    cases = [
        Case("empty.png", b"", "image_empty"),
        Case("notes.png", b"Dear diary, today I renamed a text file to .png\n" * 20, "image_not_image"),
        Case("cut.png", truncated("PNG"), "image_corrupt"),
        Case("cut.jpg", truncated("JPEG"), "image_corrupt"),
        Case("bomb.png", png_declaring(50_000, 50_000), "image_too_many_pixels"),
        Case("bomb.jpg", jpeg_declaring(20_000, 20_000), "image_too_many_pixels"),
        Case("bomb-81mp.png", png_declaring(9_000, 9_000), "image_too_many_pixels"),  # above ours, below Pillow's
        Case("one-pixel.png", encode(Image.new("RGB", (1, 1), "white"), "PNG"), EXPLAINS, digits="image_no_ink"),
        Case("thin-1x5000.png", encode(Image.new("RGB", (1, 5000), "white"), "PNG"), EXPLAINS,
             digits="image_no_ink"),
        Case("wide-5000x1.png", encode(Image.new("RGB", (5000, 1), "black"), "PNG"), EXPLAINS,
             digits="image_no_ink"),
        Case("gray16.png", gray16(), EXPLAINS, digit="1"),
        Case("cmyk.jpg", encode(drawing((64, 64), "CMYK"), "JPEG"), EXPLAINS, digit="7"),
        Case("palette.png", palette_with_transparency(), EXPLAINS, digit="1"),
        Case("gray-alpha.png", gray_alpha(), EXPLAINS, digit="1"),
        Case("transparent.png", encode(Image.new("RGBA", (32, 32), (0, 0, 0, 0)), "PNG"), EXPLAINS,
             digits="image_no_ink"),
        Case("animated.gif", animated_gif(), EXPLAINS, digit="7"),
        Case("rotated.jpg", exif_rotated_jpeg(), EXPLAINS, digit="7"),
        Case("photo.webp", encode(drawing(), "WEBP"), EXPLAINS, digit="7"),
        Case("photo.bmp", encode(drawing(), "BMP"), EXPLAINS, digit="7"),
        Case("scan.tiff", encode(drawing(), "TIFF"), "image_unsupported"),
        Case("drawing.svg", svg(), "image_unsupported"),
        Case("polyglot.png", polyglot(), EXPLAINS, digit="7"),
    ]
    if heic_data is not None:
        cases.append(Case("phone.heic", heic_data, EXPLAINS, digit="7"))
    if include_big:
        cases += [Case("phone-48mp.jpg", phone_photo_48mp(), EXPLAINS, digit="7"),
                  Case("huge-file.png", over_the_size_cap(), "image_too_big_file")]
    return cases


def bombs() -> list[Case]:
    return [c for c in image_corpus(include_big=False) if c.expect == "image_too_many_pixels"]


def catalog_pattern(lang: str, key: str) -> re.Pattern:
    """The catalog message `error.<key>` as a regex, each {parameter} standing for any text."""
    pieces = re.split(r"\{\w+\}", catalog(lang)[f"error.{key}"])
    return re.compile(".+?".join(re.escape(" ".join(p.split())) for p in pieces))


def is_message(text: str, lang: str, key: str, *, escaped: bool = False) -> bool:
    """True when `text` is exactly the catalog message for `key` (spaces collapsed; `escaped` for text that went
    through ui.user_text.md_escape, which puts a backslash before punctuation and word joiners into links)."""
    text = " ".join(text.split())
    if escaped:
        text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text.replace("\u2060", ""))  # and its word joiners
    return catalog_pattern(lang, key).fullmatch(text) is not None

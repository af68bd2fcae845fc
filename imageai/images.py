"""Reading untrusted image bytes safely: known formats only, size limits before decoding, always an RGB image."""
from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image, UnidentifiedImageError

from imageai.errors import ImageReadError

MAX_FILE_BYTES = 50 * 2**20  # the largest upload read at all
MAX_PIXELS = 60_000_000  # checked from the header before decoding; a 48 MP phone photo fits
WORK_SIDE = 512  # decoded images are shrunk to this long side: the display copy (preprocess.DISPLAY_SIDE) and
# the digit finder (FIND_SIDE) need no more, models take a few dozen pixels; each step down costs ~10 ms
# Pillow's names for the formats we decode ("MPO" is a phone JPEG with extra pictures inside).
ALLOWED_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF", "HEIF")
EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "heic", "heif")  # what the uploaders offer to pick
_RESIZE_FIRST_MODES = ("RGB", "RGBA", "L", "LA")  # shrunk before conversion to save memory
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {  # EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_heif_state: dict[str, bool] = {}


def heif_available() -> bool:
    """Register pillow-heif's HEIC/HEIF opener once, on first use; False when it is not installed."""
    if "ok" not in _heif_state:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_state["ok"] = True
        except Exception:  # missing or broken native library: HEIC is then refused with a clear message
            _heif_state["ok"] = False
    return _heif_state["ok"]


def read_image(data: bytes, *, name: str = "") -> Image.Image:
    """Encoded bytes -> an upright RGB image at most WORK_SIDE on its long side; problems raise ImageReadError.

    `name` (the upload's file name) is only passed on in the error's parameters; the format is taken
    from the content.
    """
    if not data:
        raise ImageReadError("image_empty", name=name)
    if len(data) > MAX_FILE_BYTES:
        raise ImageReadError("image_too_big_file", mb=MAX_FILE_BYTES // 2**20, name=name)
    img = _open(bytes(data), name)
    try:
        rgb = _decode(img, name)
        return rgb.copy() if rgb is img else rgb  # closing the file must not close the result
    finally:
        img.close()


def _open(data: bytes, name: str) -> Image.Image:
    """Identify the format from the header and check the pixel count; nothing is decoded yet."""
    heif_available()
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        pixels = [int(n) for n in re.findall(r"\((\d+) pixels\)", str(err))]
        raise _too_many(pixels[0] if pixels else None, name) from None
    except UnidentifiedImageError:
        raise _unidentified(data, name) from None
    except Exception:  # a plugin choked on a malformed header
        raise ImageReadError("image_corrupt", name=name) from None
    if img.format not in ALLOWED_FORMATS:
        fmt = img.format or "?"
        img.close()
        raise ImageReadError("image_unsupported", format=fmt, name=name)
    width, height = img.size
    if width * height > MAX_PIXELS:
        img.close()
        raise _too_many(width * height, name)
    return img


def _too_many(pixels: int | None, name: str) -> ImageReadError:
    megapixels = f"{pixels / 1e6:,.0f}" if pixels else "?"
    return ImageReadError("image_too_many_pixels", megapixels=megapixels, limit=MAX_PIXELS // 1_000_000, name=name)


def _unidentified(data: bytes, name: str) -> ImageReadError:
    """Name well-known formats Pillow cannot open (or that we chose not to), else say it is no image."""
    head = data[:1024]
    lower = head.lower()
    known = {b"%PDF": "PDF", b"PK\x03\x04": "ZIP", b"8BPS": "PSD", b"\x00\x00\x00\x0cjP  ": "JPEG 2000"}
    for magic, fmt in known.items():
        if head.startswith(magic):
            return ImageReadError("image_unsupported", format=fmt, name=name)
    if b"<svg" in lower:
        return ImageReadError("image_unsupported", format="SVG", name=name)
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        if not heif_available():
            return ImageReadError("image_heic_missing", name=name)
        return ImageReadError("image_corrupt", name=name)
    return ImageReadError("image_not_image", name=name)


def _decode(img: Image.Image, name: str) -> Image.Image:
    """Decode (a JPEG at reduced scale), shrink, flatten to RGB and turn upright."""
    try:
        orientation = _orientation(img)
        if img.format in ("JPEG", "MPO"):
            img.draft("RGB", (WORK_SIDE, WORK_SIDE))  # libjpeg decodes at 1/2, 1/4 or 1/8 scale: fast, little memory
        img.load()  # a truncated file raises here, as long as ImageFile.LOAD_TRUNCATED_IMAGES stays False
        if img.mode in _RESIZE_FIRST_MODES and "transparency" not in img.info:
            img = shrink(img, WORK_SIDE)
        img = shrink(to_rgb(img), WORK_SIDE)
        if orientation in _TRANSPOSE:
            img = img.transpose(_TRANSPOSE[orientation])
        return img
    except ImageReadError:
        raise
    except Exception:  # OSError, SyntaxError, ValueError, struct.error, MemoryError...: all mean unreadable
        raise ImageReadError("image_corrupt", name=name) from None


def _orientation(img: Image.Image) -> int:
    """EXIF orientation 1-8; a broken EXIF block only means we cannot rotate, not that the image is bad."""
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1


def shrink(img: Image.Image, max_side: int) -> Image.Image:
    """The image scaled down (never up) so its long side is at most `max_side`, antialiased."""
    if max(img.size) <= max_side:
        return img
    return img.resize(long_side_size(img.size, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)


def fit_long_side(img: Image.Image, side: int, enlarge: Image.Resampling) -> Image.Image:
    """Scaled so its long side is exactly `side`: shrunk as `shrink` does, enlarged with `enlarge`."""
    if max(img.size) >= side:
        return shrink(img, side)
    return img.resize(long_side_size(img.size, side), enlarge)


def long_side_size(size: tuple[int, int], side: float) -> tuple[int, int]:
    """(width, height) scaled so the longer is `side`; never 0, so a 5000 x 1 strip stays a strip."""
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: transparency flattened, 16-bit and float scaled by their range, CMYK converted."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img)), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return flatten_alpha(img.convert("RGBA"))
    if img.mode == "RGB":
        return img
    return img.convert("RGB")  # L, 1, P, CMYK (Pillow applies Adobe's inverted CMYK for JPEG), YCbCr...


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """High-bit or float pixels -> uint8 by the range they use (from 0, or their minimum if negative)."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = min(float(values.min()), 0.0), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def flatten_alpha(rgba: Image.Image) -> Image.Image:
    """Composite an RGBA image on a plain background: white, unless what is visible is itself light.

    White suits the usual dark drawing or logo; a light drawing on a transparent background (a canvas
    with white strokes) would vanish on white, so it goes on black instead.
    """
    pixels = np.asarray(rgba, dtype=np.float32)
    alpha = pixels[..., 3] / 255.0
    visible = float(alpha.sum())
    light = visible > 0 and float((pixels[..., :3].mean(axis=2) * alpha).sum()) / visible > 200.0
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255) if light else (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def image_from_array(pixels: np.ndarray) -> Image.Image:
    """A uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> an RGB image (alpha flattened)."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 1:
        raise ValueError(f"need a uint8 (H, W[, C]) array, not {pixels.dtype} {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        return Image.fromarray(pixels, "L").convert("RGB")
    if pixels.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    if pixels.shape[2] == 4:
        return flatten_alpha(Image.fromarray(np.ascontiguousarray(pixels), "RGBA"))
    raise ValueError(f"need 1, 3 or 4 channels, not {pixels.shape[2]}")


def thumbnail_for_display(img: Image.Image, max_side: int) -> Image.Image:
    """A copy at most `max_side` on its long side (never enlarged), for showing on a page."""
    small = shrink(img, max_side)
    return small.copy() if small is img else small

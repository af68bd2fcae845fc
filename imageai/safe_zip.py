"""Reading a user's zip archive in memory, safe against path tricks, links, nesting, encryption and zip bombs."""
from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator

from imageai.errors import DatasetError

MB = 2**20
CHUNK = 64 * 1024  # members are decompressed this much at a time, so the size caps hold while reading
RATIO_FREE_BYTES = 8 * MB  # below this a member may compress as well as it likes: a plain BMP or TIFF photo can
# shrink 100x or more, and the total cap bounds the work such members can cause
SAFE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # bzip2 and LZMA decompress a whole chunk in one
# unbounded call (a few KB can become gigabytes), so members packed with them are skipped, never opened
NESTED_SUFFIXES = (".zip", ".jar", ".apk", ".7z", ".rar", ".tar", ".gz", ".tgz")
ZIP_MAGIC = b"PK\x03\x04"
JUNK_NAMES = ("__MACOSX", "Thumbs.db", "desktop.ini")  # added by macOS and Windows, never the user's photos
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENCRYPTED = 0x1
_UTF8_NAME = 0x800


def split_path(name: str) -> tuple[str, ...] | None:
    """'a\\b/./c.png' -> ('a', 'b', 'c.png'); None for an absolute path, a drive or anything climbing out ('..')."""
    name = name.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name) or "\x00" in name:
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        return None
    return parts


def is_hidden(parts: tuple[str, ...]) -> bool:
    """True for hidden files and folders ('.DS_Store', '._x.jpg') and the junk operating systems add."""
    return any(p.startswith(".") or p in JUNK_NAMES for p in parts)


def iter_zip_images(data: bytes, *, max_members: int = 10_000, max_total_bytes: int = 500 * MB,
                    max_ratio: float = 100, max_member_bytes: int = 25 * MB,
                    skipped: list[tuple[str, str]] | None = None) -> Iterator[tuple[tuple[str, ...], bytes]]:
    """Yield (path parts, content) for each regular, visible file of a zip, never touching the disk.

    Members that are unsafe or unreadable are skipped and, when `skipped` is given, appended to it as
    (name, reason) with reason one of: unsafe_path, link, not_regular, encrypted, unsupported, nested_archive,
    too_big. Folders and hidden files are left out silently. Sizes are counted on the real decompressed
    bytes while reading, whatever the headers claim: more than `max_total_bytes` in all raises
    DatasetError('zip_too_big'), a member expanding more than `max_ratio` times its packed size raises
    'zip_bomb', more than `max_members` entries raises 'zip_too_many_files', a broken archive 'zip_corrupt'.
    Memory held at once stays below max(max_member_bytes, max_ratio x packed size) plus the archive itself.
    """
    archive = _open(data)
    with archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise DatasetError("zip_too_many_files", max=max_members)
        budget = [max_total_bytes]  # bytes still allowed, shared by every member read
        for info in infos:
            name = _member_name(info)
            parts = split_path(name)
            reason = _refusal(info, parts, max_member_bytes)
            if reason == "":
                continue  # a folder or a hidden file: nothing the user meant as a photo
            if reason is None:
                packed = max(min(info.compress_size, len(data)), 1)  # the header can lie; the archive cannot
                content = _read_member(archive, info, max_member_bytes, max(max_ratio * packed, RATIO_FREE_BYTES),
                                       budget, max_total_bytes)
                reason = "too_big" if content is None else "nested_archive" if content.startswith(ZIP_MAGIC) else None
            if reason is not None:
                if skipped is not None:
                    skipped.append((name, reason))
                continue
            yield parts, content


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, NotImplementedError):
        raise DatasetError("zip_corrupt") from None


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name; without the UTF-8 flag, zipfile guessed cp437, so try UTF-8 and Korean Windows (cp949)."""
    name = info.filename
    if info.flag_bits & _UTF8_NAME or name.isascii():
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for encoding in ("utf-8", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return name


def _refusal(info: zipfile.ZipInfo, parts: tuple[str, ...] | None, max_member_bytes: int) -> str | None:
    """Why a member is not read: a reason, '' to leave it out silently, or None to read it. Headers only."""
    if parts is None:
        return "unsafe_path"
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode) or not parts or is_hidden(parts):
        return ""
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        return "not_regular"  # a device, pipe or socket
    if info.flag_bits & _ENCRYPTED:
        return "encrypted"
    if info.compress_type not in SAFE_METHODS:
        return "unsupported"
    if parts[-1].lower().endswith(NESTED_SUFFIXES):
        return "nested_archive"
    if info.file_size > max_member_bytes:
        return "too_big"  # trusting the header only to refuse early; a smaller claim is checked while reading
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, ratio_cap: float,
                 budget: list[int], max_total_bytes: int) -> bytes | None:
    """The member's bytes, counted chunk by chunk; None when it passes max_bytes (the caller skips it)."""
    chunks, size = [], 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise DatasetError("zip_too_big", mb=max_total_bytes // MB)
                if size > ratio_cap:
                    raise DatasetError("zip_bomb")
                if size > max_bytes:
                    return None
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, ValueError, NotImplementedError):
        raise DatasetError("zip_corrupt") from None  # a bad CRC, a damaged stream or a lying header
    return b"".join(chunks)

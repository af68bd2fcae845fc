"""Hostile zips are read in memory only: unsafe paths, links, nesting, encryption and zip bombs never get through."""
import io
import os
import stat
import struct
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imageai.errors import DatasetError
from imageai.safe_zip import is_hidden, iter_zip_images, split_path

MB = 2**20


def png(color=(200, 30, 30), size=(12, 9)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    """entries: (name or ZipInfo, bytes); folders as names ending in '/'."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def patch_headers(data: bytes, name: bytes, *, flags_or: int = 0, file_size: int | None = None,
                  new_name: bytes | None = None, flags_and: int = 0xFFFF) -> bytes:
    """Rewrite a member's local header and central directory entry, as a hand-made hostile zip would."""
    out = bytearray(data)
    for sig, flags_at, usize_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 22, 26, 30),
                                                         (b"PK\x01\x02", 8, 24, 28, 46)):
        start = out.find(sig)
        while start >= 0:
            n = struct.unpack_from("<H", out, start + name_len_at)[0]
            if bytes(out[start + name_at:start + name_at + n]) == name:
                flags = (struct.unpack_from("<H", out, start + flags_at)[0] | flags_or) & flags_and
                struct.pack_into("<H", out, start + flags_at, flags)
                if file_size is not None:
                    struct.pack_into("<I", out, start + usize_at, file_size)
                if new_name is not None:
                    assert len(new_name) == n
                    out[start + name_at:start + name_at + n] = new_name
            start = out.find(sig, start + 4)
    return bytes(out)


def read_all(data: bytes, **caps):
    skipped: list[tuple[str, str]] = []
    members = list(iter_zip_images(data, skipped=skipped, **caps))
    return members, skipped


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A 200 MB member of zeros, deflated to about 200 KB; written in 1 MB pieces so building it stays cheap."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cats/ok.png", png())
        with zf.open("cats/bomb.png", "w") as f:
            zeros = bytes(MB)
            for _ in range(200):
                f.write(zeros)
    return buf.getvalue()


@pytest.mark.parametrize("name, parts", [
    ("cat/a.png", ("cat", "a.png")),
    ("photos\\cat\\a.png", ("photos", "cat", "a.png")),
    ("./cat//a.png", ("cat", "a.png")),
    ("../evil.png", None),
    ("cat/../../evil.png", None),
    ("/etc/x", None),
    ("\\server\\x.png", None),
    ("C:\\x.png", None),
    ("c:/x.png", None),
    ("고양이/사진.png", ("고양이", "사진.png")),
])
def test_split_path_refuses_absolute_and_climbing_paths(name, parts):
    assert split_path(name) == parts


def test_hidden_files_and_os_junk_are_recognised():
    assert is_hidden((".DS_Store",)) and is_hidden(("__MACOSX", "cat", "._a.png")) and is_hidden(("Thumbs.db",))
    assert not is_hidden(("cat", "a.png"))


def test_regular_members_are_yielded_with_their_bytes_and_folders_and_junk_left_out():
    a, b = png((255, 0, 0)), png((0, 0, 255))
    data = make_zip([("cat/", b""), ("cat/a.png", a), ("고양이/b.png", b), (".DS_Store", b"x"),
                     ("__MACOSX/cat/._a.png", b"junk")])
    members, skipped = read_all(data)
    assert members == [(("cat", "a.png"), a), (("고양이", "b.png"), b)]
    assert skipped == []


def test_traversal_and_absolute_entries_are_skipped_and_nothing_is_written(tmp_path, monkeypatch):
    work, scratch = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda *a, **k: pytest.fail("extract called"))
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda *a, **k: pytest.fail("extractall called"))
    before = tree(tmp_path)
    evil = ["../evil.png", "cat/../../evil2.png", "/abs.png", "C:\\win.png", "..\\back.png"]
    data = make_zip([(zipfile.ZipInfo(n), png()) for n in evil] + [("cat/ok.png", png())])
    members, skipped = read_all(data)
    assert [parts for parts, _ in members] == [("cat", "ok.png")]
    assert sorted(skipped) == sorted((n, "unsafe_path") for n in evil)
    assert tree(tmp_path) == before
    assert not Path("/abs.png").exists() and not (tmp_path / "evil.png").exists()


def test_symlink_entry_is_skipped_not_followed():
    link = zipfile.ZipInfo("cat/passwd.png")
    link.create_system = 3  # Unix, so the high bits of external_attr are a file mode
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    fifo = zipfile.ZipInfo("cat/pipe.png")
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    data = make_zip([(link, b"../../../etc/passwd"), (fifo, png()), ("cat/ok.png", png())])
    members, skipped = read_all(data)
    assert [parts for parts, _ in members] == [("cat", "ok.png")]
    assert skipped == [("cat/passwd.png", "link"), ("cat/pipe.png", "not_regular")]


def test_nested_zip_is_skipped_and_never_opened(monkeypatch):
    inner = make_zip([("cat/inner.png", png())])
    data = make_zip([("cat/inner.zip", inner), ("cat/disguised.png", inner), ("cat/ok.png", png())])
    opened = []
    real = zipfile.ZipFile
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: opened.append(a) or real(*a, **k))
    members, skipped = read_all(data)
    assert [parts for parts, _ in members] == [("cat", "ok.png")]
    assert skipped == [("cat/inner.zip", "nested_archive"), ("cat/disguised.png", "nested_archive")]
    assert len(opened) == 1  # only the outer archive


def test_encrypted_member_is_skipped_and_the_rest_still_read():
    data = patch_headers(make_zip([("cat/secret.png", png()), ("cat/ok.png", png())]), b"cat/secret.png",
                         flags_or=0x1)
    members, skipped = read_all(data)
    assert [parts for parts, _ in members] == [("cat", "ok.png")]
    assert skipped == [("cat/secret.png", "encrypted")]


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_members_packed_with_unbounded_decompressors_are_skipped(method):
    members, skipped = read_all(make_zip([("cat/a.png", png())], method))
    assert members == [] and skipped == [("cat/a.png", "unsupported")]


def test_too_many_members_raise_before_reading():
    data = make_zip([(f"cat/{i}.png", b"x") for i in range(11)])
    with pytest.raises(DatasetError) as err:
        read_all(data, max_members=10)
    assert err.value.key == "zip_too_many_files" and "10" in err.value.message("en")
    assert len(read_all(data, max_members=11)[0]) == 11


def test_zip_bomb_is_refused_while_reading_with_bounded_memory(bomb):
    assert len(bomb) < 400_000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DatasetError) as err:
            read_all(bomb, max_member_bytes=300 * MB)  # a cap that lets the header through: only counting stops it
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.key == "zip_bomb"
    assert time.perf_counter() - start < 5
    assert peak < 40 * MB  # stopped at 100 x ~200 KB packed = ~20 MB, not 200 MB


def test_zip_bomb_that_admits_its_size_is_skipped_without_unpacking(bomb, monkeypatch):
    real_open = zipfile.ZipFile.open

    def open_unless_bomb(self, info, *args, **kwargs):
        assert not info.filename.endswith("bomb.png"), "the bomb was unpacked"
        return real_open(self, info, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_unless_bomb)
    members, skipped = read_all(bomb)  # default 25 MB per member; its header says 200 MB
    assert [parts for parts, _ in members] == [("cats", "ok.png")]
    assert skipped == [("cats/bomb.png", "too_big")]


def test_header_that_understates_the_size_is_caught_while_reading(bomb):
    lying = patch_headers(bomb, b"cats/bomb.png", file_size=1000)  # claims 1 KB: passes any header check
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("cats/bomb.png").file_size == 1000
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as err:
            read_all(lying)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.key == "zip_corrupt"  # the real bytes do not match the header's size and CRC
    assert peak < 5 * MB


def test_total_size_is_counted_on_real_bytes():
    rng = np.random.default_rng(0)
    blobs = [rng.integers(0, 256, 3 * MB, dtype=np.uint8).tobytes() for _ in range(3)]
    data = make_zip([(f"cat/{i}.bmp", b) for i, b in enumerate(blobs)], zipfile.ZIP_STORED)
    with pytest.raises(DatasetError) as err:
        read_all(data, max_total_bytes=8 * MB)
    assert err.value.key == "zip_too_big" and err.value.params == {"mb": 8}
    assert len(read_all(data, max_total_bytes=9 * MB)[0]) == 3


def test_member_over_the_size_cap_is_skipped_and_others_kept():
    big = bytes(range(256)) * (3 * MB // 256)
    data = make_zip([("cat/big.bmp", big), ("cat/ok.png", png())], zipfile.ZIP_STORED)
    members, skipped = read_all(data, max_member_bytes=2 * MB)
    assert [parts for parts, _ in members] == [("cat", "ok.png")]
    assert skipped == [("cat/big.bmp", "too_big")]


def test_simple_pictures_that_compress_well_are_not_taken_for_bombs():
    flat = bytes(3 * MB)  # a plain white-ish BMP can shrink 1000x; under RATIO_FREE_BYTES that is allowed
    members, skipped = read_all(make_zip([("cat/flat.bmp", flat)]))
    assert members == [(("cat", "flat.bmp"), flat)] and skipped == []


@pytest.mark.parametrize("data", [b"", b"not a zip at all", png()])
def test_data_that_is_no_zip_raises_zip_corrupt(data):
    with pytest.raises(DatasetError) as err:
        read_all(data)
    assert err.value.key == "zip_corrupt"


def test_truncated_zip_raises_zip_corrupt():
    data = make_zip([("cat/a.png", png()), ("cat/b.png", png())])
    with pytest.raises(DatasetError) as err:
        read_all(data[: len(data) // 2])
    assert err.value.key == "zip_corrupt"


def test_member_with_damaged_bytes_raises_zip_corrupt():
    content = png()
    data = bytearray(make_zip([("cat/a.png", content)], zipfile.ZIP_STORED))
    at = bytes(data).find(content)
    data[at + 20] ^= 0xFF  # the CRC no longer matches
    with pytest.raises(DatasetError) as err:
        read_all(bytes(data))
    assert err.value.key == "zip_corrupt"


def test_korean_names_from_windows_zips_are_decoded():
    korean = "고양이".encode("cp949")  # 6 bytes, written by Korean Windows without the UTF-8 flag
    data = make_zip([("abcdef/a.png", png())])
    data = patch_headers(data, b"abcdef/a.png", new_name=korean + b"/a.png", flags_and=~0x800 & 0xFFFF)
    members, _ = read_all(data)
    assert members[0][0] == ("고양이", "a.png")


def test_no_files_appear_on_disk_while_reading(tmp_path, monkeypatch, bomb):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    read_all(make_zip([("cat/a.png", png()), ("dog/b.png", png())]))
    with pytest.raises(DatasetError):
        read_all(bomb, max_member_bytes=300 * MB)
    assert os.listdir(tmp_path) == []


def test_checksum_of_yielded_bytes_matches_the_original():
    content = np.random.default_rng(1).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (parts, got), = read_all(make_zip([("cat/noise.bmp", content)]))[0]
    assert zlib.crc32(got) == zlib.crc32(content) and len(got) == len(content)

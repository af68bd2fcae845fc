"""Model files: round trips keep every weight and field; broken or hostile files raise ModelFileError, never unpickle."""
import builtins
import io
import json
import os
import pathlib
import pickle
import re
import struct
import time

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from imageai import modelfile
from imageai.errors import ModelFileError
from imageai.i18n import catalog
from imageai.model import CNN, CNNConfig
from imageai.modelfile import InputSpec, LoadedModel

XSS = "<img src=x onerror=alert(1)>"
CONFIG = CNNConfig(in_channels=3, input_size=16, filters=(4, 8), classes=("원", "삼각형", XSS))
SPEC = InputSpec("resize", 3, 16, (0.5, 0.45, 0.4), (0.2, 0.25, 0.3))
META = {"dataset": {"name": "shapes"}, "accuracy": {"test": 0.875}, "training": {"epochs": 3, "learning_rate": 0.002}}
ROUND_TRIP_CASES = [  # (config, spec): 1-4 blocks, grayscale and RGB, odd sizes that pooling floors
    (CNNConfig(), InputSpec("mnist", 1, 28, (0.1307,), (0.3081,))),
    (CNNConfig(3, 29, (5, 6, 7), ("x", "y")), InputSpec("resize", 3, 29, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))),
    (CNNConfig(1, 30, (2, 3, 4, 5), tuple("0123")), InputSpec("resize", 1, 30, (0.5,), (0.5,))),
    (CNNConfig(3, 8, (3,), ("a", "b")), InputSpec("resize", 3, 8, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6))),
]


def _loaded(config: CNNConfig = CONFIG, spec: InputSpec = SPEC, meta: dict | None = None) -> LoadedModel:
    torch.manual_seed(0)
    return LoadedModel("tiny", CNN(config).eval(), spec, meta=dict(META if meta is None else meta))


def _state(config: CNNConfig = CONFIG) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.contiguous() for k, v in CNN(config).state_dict().items()}


def _record() -> dict:
    return modelfile.model_record("tiny", CONFIG, SPEC, **META)


def _file(record: dict | str | None = None, tensors: dict | None = None) -> bytes:
    """A real safetensors file; `record` is the ImageAi JSON record (a str is stored as it is)."""
    record = _record() if record is None else record
    text = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
    return save_tensors(_state() if tensors is None else tensors, metadata={"imageai": text})


def _raw(header: bytes, body: bytes = b"") -> bytes:
    """A file in safetensors layout with any header: 8-byte little-endian length, header, body."""
    return struct.pack("<Q", len(header)) + header + body


def _split(data: bytes) -> tuple[bytes, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return data[8:8 + n], data[8 + n:]


def _refused(call, key: str) -> ModelFileError:
    """`call()` raises ModelFileError(key) whose message reads as a sentence in English and in Korean."""
    with pytest.raises(ModelFileError) as raised:
        call()
    error = raised.value
    assert error.key == key
    en, ko = error.message("en"), error.message("ko")
    for message in (en, ko):
        assert message.strip() and message not in (key, f"error.{key}")
        assert "{" not in message  # every placeholder was filled
    assert en != ko and re.search("[가-힣]", ko)
    return error


def _refused_bytes(data: bytes, key: str) -> ModelFileError:
    return _refused(lambda: modelfile.from_bytes(data), key)


# ---- round trips -------------------------------------------------------------------------------------------


def test_save_then_load_keeps_weights_config_input_spec_and_meta(tmp_path):
    original = _loaded()
    modelfile.save(original, tmp_path / "model.safetensors")
    loaded = modelfile.load(tmp_path / "model.safetensors")
    assert loaded.name == "tiny" and loaded.config == CONFIG and loaded.input_spec == SPEC
    assert loaded.classes == ("원", "삼각형", XSS)
    assert {k: loaded.meta[k] for k in META} == META
    expected = original.model.state_dict()
    assert loaded.model.state_dict().keys() == expected.keys()
    for key, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, expected[key]), key


def test_to_bytes_then_from_bytes_in_memory_gives_the_same_model_and_outputs():
    original = _loaded()
    loaded = modelfile.from_bytes(modelfile.to_bytes(original))
    assert loaded.config == CONFIG and loaded.input_spec == SPEC and loaded.meta["accuracy"] == {"test": 0.875}
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded.model(x), original.model(x))


@pytest.mark.parametrize("config, spec", ROUND_TRIP_CASES, ids=["digits", "3-blocks-odd", "4-blocks", "1-block"])
def test_every_architecture_round_trips(config, spec):
    loaded = modelfile.from_bytes(modelfile.to_bytes(_loaded(config, spec)))
    assert loaded.config == config and loaded.input_spec == spec
    assert sum(p.numel() for p in loaded.model.parameters()) == modelfile._weight_count(config)


def test_korean_and_html_class_names_survive_byte_for_byte():
    data = modelfile.to_bytes(_loaded())
    header, _ = _split(data)
    assert "삼각형".encode() in header  # stored as UTF-8 text, not \\u escapes, and never HTML-escaped
    loaded = modelfile.from_bytes(data)
    assert loaded.classes[1] == "삼각형" and loaded.classes[2] == XSS and loaded.meta["classes"][2] == XSS


def test_the_record_is_plain_json_in_the_safetensors_metadata(tmp_path):
    modelfile.save(_loaded(), tmp_path / "model.safetensors")
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        record = json.loads(f.metadata()["imageai"])
        assert set(f.keys()) == set(_state())
    assert record["format"] == "imageai-model" and record["format_version"] == 1
    assert record["classes"] == list(CONFIG.classes) and record["architecture"] == CONFIG.to_dict()
    assert record["input"] == SPEC.to_dict() and record["dataset"] == {"name": "shapes"}


def test_saving_a_loaded_model_again_gives_the_same_bytes():
    data = modelfile.to_bytes(_loaded())
    assert modelfile.to_bytes(modelfile.from_bytes(data)) == data
    assert modelfile.to_bytes(_loaded()) == data


def test_stale_core_keys_in_meta_do_not_override_the_model():
    stale = {"classes": ["x", "y"], "format_version": 99, "name": "other", "architecture": {}, "dataset": {"name": "d"}}
    loaded = modelfile.from_bytes(modelfile.to_bytes(_loaded(meta=stale)))
    assert loaded.name == "tiny" and loaded.classes == CONFIG.classes and loaded.meta["dataset"] == {"name": "d"}


def test_the_loaded_model_is_in_eval_mode_float32_on_the_cpu():
    original = _loaded()
    original.model.double().train()  # saving converts, loading never trusts the saver's mode
    loaded = modelfile.from_bytes(modelfile.to_bytes(original))
    assert not any(m.training for m in loaded.model.modules())
    for tensor in loaded.model.state_dict().values():
        assert tensor.dtype == torch.float32 and tensor.device.type == "cpu"


def test_loading_a_valid_file_never_unpickles(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling during load")

    data = modelfile.to_bytes(_loaded())
    for owner, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(owner, name, forbidden)
    assert modelfile.from_bytes(data).config == CONFIG


# ---- files that are not safetensors at all ------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"", b"\x01" * 7, bytes(range(256)) * 16,
    struct.pack("<Q", 2**64 - 1) + b"{}",
], ids=["empty", "7-bytes", "counting-bytes", "header-length-2^64-1"])
def test_bytes_that_are_not_safetensors_are_refused(data):
    _refused_bytes(data, "model_not_safetensors")


def test_random_bytes_are_refused():
    data = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    _refused_bytes(data.numpy().tobytes(), "model_not_safetensors")


def test_a_header_length_pointing_past_the_end_is_refused():
    header, body = _split(_file())
    _refused_bytes(struct.pack("<Q", len(header) + len(body) + 1) + header + body, "model_not_safetensors")


def test_a_header_longer_than_the_limit_is_refused_even_when_the_file_is_long_enough():
    header, body = _split(_file())
    at_limit = header + b" " * (modelfile.MAX_HEADER_BYTES - len(header))  # JSON allows trailing spaces
    assert modelfile.from_bytes(_raw(at_limit, body)).config == CONFIG
    _refused_bytes(_raw(at_limit + b" ", body), "model_not_safetensors")


@pytest.mark.parametrize("cut", ["half", "last-byte"])
def test_a_truncated_file_is_refused(cut):
    data = _file()
    header, _ = _split(data)
    end = len(data) // 2 if cut == "half" else len(data) - 1
    assert end > 8 + len(header)  # the cut falls in the weights, after a header that parses
    _refused_bytes(data[:end], "model_not_safetensors")


# ---- safetensors files without a usable ImageAi record ------------------------------------------------------


def test_a_safetensors_file_without_imageai_metadata_is_refused():
    _refused_bytes(save_tensors({"w": torch.randn(4, 4), "b": torch.zeros(4)}), "model_not_imageai")
    _refused_bytes(save_tensors(_state(), metadata={"format": "pt"}), "model_not_imageai")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"', "null", ""],
                         ids=["broken-json", "a-list", "a-string", "null", "empty"])
def test_a_record_that_is_not_a_json_object_is_refused(text):
    _refused_bytes(_file(text), "model_not_imageai")


def test_a_header_that_is_not_utf8_is_refused():
    _refused_bytes(_raw(b'{"__metadata__": {"imageai": "\xff\xfe"}}'), "model_not_imageai")


def test_a_wrong_format_is_refused():
    _refused_bytes(_file({**_record(), "format": "other-model"}), "model_not_imageai")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_a_wrong_format_version_is_refused_naming_the_version(version):
    error = _refused_bytes(_file({**_record(), "format_version": version}), "model_bad_version")
    assert str(version) in error.message("en") and str(version) in error.message("ko")


def test_a_missing_format_version_is_refused():
    record = _record()
    del record["format_version"]
    _refused_bytes(_file(record), "model_bad_version")


def test_a_huge_format_version_is_cut_short_in_the_message():
    error = _refused_bytes(_file({**_record(), "format_version": "9" * 10_000}), "model_bad_version")
    assert len(error.message("en")) < 300 and len(error.message("ko")) < 300


@pytest.mark.parametrize("header", [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    json.dumps({"__metadata__": {"imageai": "[" * 200_000 + "]" * 200_000}}).encode(),
    json.dumps({"__metadata__": {"imageai": '{"format":' * 60_000 + "1" + "}" * 60_000}}).encode(),
], ids=["nested-header-lists", "nested-header-objects", "nested-record-lists", "nested-record-objects"])
def test_deeply_nested_json_is_refused_without_recursion_error(header):
    assert len(header) <= modelfile.MAX_HEADER_BYTES
    _refused_bytes(_raw(header), "model_not_imageai")


def test_a_5000_digit_number_in_the_record_is_refused():
    text = '{"format": "imageai-model", "format_version": ' + "1" * 5000 + "}"
    _refused_bytes(_file(text), "model_not_imageai")


# ---- records that contradict themselves -----------------------------------------------------------------------


def _changed(change) -> bytes:
    record = _record()
    change(record)
    return _file(record)


BAD_RECORDS = {
    "missing-architecture": lambda r: r.pop("architecture"),
    "missing-input": lambda r: r.pop("input"),
    "missing-classes": lambda r: r.pop("classes"),
    "architecture-not-an-object": lambda r: r.update(architecture="big"),
    "classes-contradict-architecture": lambda r: r.update(classes=["a", "b", "c"]),
    "classes-in-another-order": lambda r: r.update(classes=list(reversed(CONFIG.classes))),
    "classes-not-a-list": lambda r: r.update(classes=5),
    "input-channels-contradict-architecture": lambda r: r["input"].update(channels=1, mean=[0.5], std=[0.2]),
    "input-size-contradicts-architecture": lambda r: r["input"].update(size=32),
    "mnist-preprocess-with-3-channels": lambda r: r["input"].update(preprocess="mnist"),
    "unknown-preprocess": lambda r: r["input"].update(preprocess="sharpen"),
    "mean-per-channel-missing": lambda r: r["input"].update(mean=[0.5, 0.5]),
    "std-zero": lambda r: r["input"].update(std=[0.2, 0.0, 0.3]),
    "std-negative": lambda r: r["input"].update(std=[0.2, -0.25, 0.3]),
    "std-nan": lambda r: r["input"].update(std=[0.2, float("nan"), 0.3]),
    "std-infinite": lambda r: r["input"].update(std=[0.2, float("inf"), 0.3]),
    "mean-nan": lambda r: r["input"].update(mean=[0.5, float("nan"), 0.4]),
    "input-size-infinity": lambda r: r["architecture"].update(input_size=float("inf")),
    "channels-not-a-number": lambda r: r["architecture"].update(in_channels="three"),
    "in-channels-2": lambda r: r["architecture"].update(in_channels=2),
    "no-blocks": lambda r: r["architecture"].update(filters=[]),
    "five-blocks": lambda r: r["architecture"].update(filters=[1, 1, 1, 1, 1]),
    "zero-filters": lambda r: r["architecture"].update(filters=[4, 0]),
    "one-class": lambda r: (r["architecture"].update(classes=["a"]), r.update(classes=["a"])),
    "std-below-float32": lambda r: r["input"].update(std=[0.2, 1e-300, 0.3]),  # 0 once in float32
    "mean-beyond-float32": lambda r: r["input"].update(mean=[0.5, 1e308, 0.4]),  # inf once in float32
    "dataset-not-an-object": lambda r: r.update(dataset="digits"),  # the Explore page reads dataset["name"]
    "accuracy-not-an-object": lambda r: r.update(accuracy=[0.9]),  # the Train page reads accuracy["test"]
}


@pytest.mark.parametrize("change", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_record_that_contradicts_itself_or_is_incomplete_is_refused(change):
    _refused_bytes(_changed(change), "model_bad_metadata")


HUGE_ARCHITECTURES = {
    "filters-100000": ({"filters": [100_000, 100_000]}, "model_bad_metadata"),
    "filters-257": ({"filters": [257]}, "model_bad_metadata"),
    "input-size-100000": ({"input_size": 100_000}, "model_bad_metadata"),
    "1001-classes": ({"classes": [f"c{i}" for i in range(1001)]}, "model_bad_metadata"),
    # every bound met, yet 256 x 128 x 128 x 1000 dense weights (16 GB) that the file cannot hold
    "in-bounds-but-16-GB": ({"filters": [256], "input_size": 256, "classes": [f"c{i}" for i in range(1000)]},
                            "model_shape_mismatch"),
}


@pytest.mark.parametrize("change, key", HUGE_ARCHITECTURES.values(), ids=HUGE_ARCHITECTURES.keys())
def test_a_huge_architecture_is_refused_quickly_before_the_cnn_is_built(monkeypatch, change, key):
    def no_cnn(config):
        raise AssertionError(f"CNN built for {config.filters}")

    record = _record()
    record["architecture"].update(change)
    record["classes"] = record["architecture"]["classes"]
    record["input"]["size"] = record["architecture"]["input_size"]
    data = _file(record)
    monkeypatch.setattr(modelfile, "CNN", no_cnn)
    start = time.perf_counter()
    _refused_bytes(data, key)
    assert time.perf_counter() - start < 2.0


# ---- weights that do not match the record -------------------------------------------------------------------


def _with_state(change) -> bytes:
    state = _state()
    change(state)
    return _file(tensors=state)


BAD_STATES = {
    "dense-weight-transposed": lambda s: s.update({"dense.weight": s["dense.weight"].T.contiguous()}),
    "conv-weight-reshaped": lambda s: s.update({"conv1.weight": s["conv1.weight"].reshape(3, 4, 3, 3)}),
    "missing-tensor": lambda s: s.pop("dense.bias"),
    "extra-tensor": lambda s: s.update({"conv3.weight": torch.zeros(8, 8, 3, 3)}),
    "renamed-tensor": lambda s: s.update({"conv1.kernel": s.pop("conv1.weight")}),
    "no-tensors": lambda s: s.clear(),
}


@pytest.mark.parametrize("change", BAD_STATES.values(), ids=BAD_STATES.keys())
def test_weights_with_wrong_names_or_shapes_are_refused(change):
    _refused_bytes(_with_state(change), "model_shape_mismatch")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int64,
                                   torch.uint8, torch.bool], ids=lambda d: str(d).removeprefix("torch."))
def test_weights_that_are_not_float32_are_refused_naming_their_type(dtype):
    error = _refused_bytes(_with_state(lambda s: s.update({"conv2.weight": s["conv2.weight"].to(dtype)})),
                           "model_bad_dtype")
    name = str(dtype).removeprefix("torch.")
    assert name in error.message("en") and name in error.message("ko")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_weights_with_nan_or_infinity_are_refused(value):
    def poison(state):
        state["dense.weight"][1, 5] = value

    _refused_bytes(_with_state(poison), "model_bad_values")


# ---- sizes and paths ---------------------------------------------------------------------------------------------


def test_a_file_over_the_limit_on_disk_is_refused_from_its_size_without_reading_it(tmp_path, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("the file was opened")

    path = tmp_path / "big.safetensors"
    with open(path, "wb") as f:
        f.truncate(modelfile.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    for owner, name in [(pathlib.Path, "open"), (pathlib.Path, "read_bytes"), (builtins, "open"), (io, "open")]:
        monkeypatch.setattr(owner, name, no_reading)
    error = _refused(lambda: modelfile.load(path), "model_too_big")
    assert str(modelfile.MAX_FILE_BYTES // 2**20) in error.message("ko")


def test_bytes_over_the_limit_are_refused_before_parsing():
    _refused_bytes(bytes(modelfile.MAX_FILE_BYTES + 1), "model_too_big")


def test_the_size_limit_is_inclusive_for_bytes_and_files(tmp_path, monkeypatch):
    data = _file()
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    monkeypatch.setattr(modelfile, "MAX_FILE_BYTES", len(data))
    assert modelfile.from_bytes(data).config == CONFIG and modelfile.load(path).config == CONFIG
    monkeypatch.setattr(modelfile, "MAX_FILE_BYTES", len(data) - 1)
    _refused_bytes(data, "model_too_big")
    _refused(lambda: modelfile.load(path), "model_too_big")


def test_a_missing_path_is_refused(tmp_path):
    _refused(lambda: modelfile.load(tmp_path / "nowhere.safetensors"), "model_unreadable")


def test_a_directory_path_is_refused(tmp_path):
    (tmp_path / "folder.safetensors").mkdir()
    _refused(lambda: modelfile.load(tmp_path / "folder.safetensors"), "model_unreadable")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_never_ending_device_is_refused_without_reading_it():
    _refused(lambda: modelfile.load("/dev/zero"), "model_unreadable")


# ---- pickles named like model files -----------------------------------------------------------------------------


class _Touch:
    """Unpickling this creates `marker`: proof that a loader ran code from the file."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _pickle_file(marker: pathlib.Path, kind: str, path: pathlib.Path) -> pathlib.Path:
    payload = {"conv1.weight": _Touch(marker), "conv1.bias": torch.zeros(4)}
    if kind == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(kind.removeprefix("pickle-protocol-"))))
    return path


PICKLES = [("pickle-protocol-2", "model.safetensors"), ("pickle-protocol-5", "model.safetensors"),
           ("torch.save", "model.safetensors"), ("torch.save", "model.pt"), ("torch.save", "model.pth")]


@pytest.mark.parametrize("kind, name", PICKLES)
def test_the_hostile_pickle_really_runs_code_when_unpickled(tmp_path, kind, name):
    marker = tmp_path / "pwned"
    path = _pickle_file(marker, kind, tmp_path / name)
    if kind == "torch.save":
        torch.load(io.BytesIO(path.read_bytes()), weights_only=False)  # by name, .safetensors would not unpickle
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()  # so the test below, where it must not appear, is a real test


@pytest.mark.parametrize("kind, name", PICKLES)
def test_a_pickle_named_like_a_model_is_refused_without_running_it(tmp_path, kind, name):
    marker = tmp_path / "pwned"
    path = _pickle_file(marker, kind, tmp_path / name)
    _refused(lambda: modelfile.load(path), "model_not_safetensors")
    _refused_bytes(path.read_bytes(), "model_not_safetensors")
    assert not marker.exists()


# ---- the catalog ------------------------------------------------------------------------------------------------


def test_every_error_key_modelfile_raises_has_a_message_in_both_languages():
    source = pathlib.Path(modelfile.__file__).read_text(encoding="utf-8")
    keys = set(re.findall(r'ModelFileError\("(\w+)"', source))
    assert len(keys) >= 9
    for lang in ("en", "ko"):
        assert {f"error.{k}" for k in keys} <= catalog(lang).keys(), lang


# ---- calibration ---------------------------------------------------------------------------------------------


def _calibrated() -> LoadedModel:
    from imageai import calibration

    loaded = _loaded()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(60, 3, 16, 16, generator=gen)
    loaded.calibration = calibration.fit(loaded.model, x, torch.arange(60) % 3, x[:20])
    return loaded


def test_calibration_survives_the_round_trip():
    original = _calibrated()
    loaded = modelfile.from_bytes(modelfile.to_bytes(original))
    torch.testing.assert_close(loaded.calibration.class_means, original.calibration.class_means)
    torch.testing.assert_close(loaded.calibration.precision, original.calibration.precision)
    assert loaded.calibration.threshold == original.calibration.threshold
    assert loaded.meta["calibration"]["threshold"] == original.calibration.threshold


def test_a_model_without_calibration_loads_without_one():
    assert modelfile.from_bytes(modelfile.to_bytes(_loaded())).calibration is None


@pytest.mark.parametrize("tamper", ["shape", "missing_tensor", "no_record", "nan", "threshold"])
def test_a_tampered_calibration_is_refused(tamper):
    data = modelfile.to_bytes(_calibrated())
    header, _ = _split(data)
    record = json.loads(json.loads(header)["__metadata__"]["imageai"])
    from safetensors.torch import load as load_tensors

    tensors = load_tensors(data)
    if tamper == "shape":
        tensors["calibration.class_means"] = tensors["calibration.class_means"][:, :-1].contiguous()
    elif tamper == "missing_tensor":
        del tensors["calibration.precision"]
    elif tamper == "no_record":
        del record["calibration"]
    elif tamper == "nan":
        tensors["calibration.precision"][0, 0] = float("nan")
    else:
        record["calibration"]["threshold"] = -1.0
    _refused_bytes(_file(record, tensors), "model_bad_metadata")

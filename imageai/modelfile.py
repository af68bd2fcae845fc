"""Model files: one .safetensors with a JSON record in its header; read with no pickle, checked in full."""
from __future__ import annotations

import json
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from imageai import calibration
from imageai.calibration import Calibration
from imageai.errors import ModelFileError
from imageai.model import CNN, KERNEL_SIZE, CNNConfig, stage_shapes

FORMAT = "imageai-model"
FORMAT_VERSION = 1
META_KEY = "imageai"
MAX_FILE_BYTES = 64 * 1024 * 1024  # the largest model the Train page makes is < 6.5 MB (tests/test_config.py)
MAX_HEADER_BYTES = 1024 * 1024
PREPROCESS_KINDS = ("mnist", "resize")
# Bounds on what a file may describe, checked before anything is allocated; training stays well inside them.
MAX_FILTERS = 256  # per block: training doubles at most 32 filters over 4 blocks
MAX_INPUT_SIZE = 256  # pixels per side
MAX_CLASSES = 1000
MAX_NORM = 1e3  # bound on the input spec's means and stds (pixels are 0-1; real values are near 0.1-0.5)


@dataclass
class InputSpec:
    """How an image becomes the model's input tensor."""

    preprocess: str  # "mnist": grayscale, ink made light on dark, cropped, centred by mass; "resize": fit to a square
    channels: int
    size: int
    mean: tuple[float, ...]  # per-channel normalisation, applied after scaling pixels to [0, 1]
    std: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"preprocess": self.preprocess, "channels": self.channels, "size": self.size,
                "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(str(d["preprocess"]), int(d["channels"]), int(d["size"]),
                   tuple(float(m) for m in d["mean"]), tuple(float(s) for s in d["std"]))


@dataclass
class LoadedModel:
    """A ready-to-use model with its record: `model` is in eval mode on the CPU, in float32."""

    name: str
    model: CNN
    input_spec: InputSpec
    meta: dict = field(default_factory=dict)
    calibration: Calibration | None = None  # how far from its training data a picture may lie (see calibration.py)

    @property
    def config(self) -> CNNConfig:
        return self.model.config

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.config.classes


def model_record(name: str, config: CNNConfig, input_spec: InputSpec, **extra: object) -> dict:
    """The JSON record stored in a model file's header; `extra` holds dataset, accuracy and training."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "classes": list(config.classes),
            "architecture": config.to_dict(), "input": input_spec.to_dict(), **extra}


def to_bytes(loaded: LoadedModel) -> bytes:
    """Serialise a model and its record to the .safetensors bytes a user can download."""
    record = model_record(loaded.name, loaded.config, loaded.input_spec,
                          **{k: v for k, v in loaded.meta.items() if k not in _CORE_KEYS | {"calibration"}})
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in loaded.model.state_dict().items()}
    if loaded.calibration is not None:
        record["calibration"] = loaded.calibration.record()
        state.update({k: v.detach().to("cpu", torch.float32).contiguous()
                      for k, v in loaded.calibration.tensors().items()})
    return save_tensors(state, metadata={META_KEY: json.dumps(record, ensure_ascii=False)})


def save(loaded: LoadedModel, path: str | Path) -> None:
    Path(path).write_bytes(to_bytes(loaded))


def load(path: str | Path) -> LoadedModel:
    """Read a model file from disk; any problem raises ModelFileError."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a folder, a pipe or a device: nothing to read, or never-ending
            raise ModelFileError("model_unreadable")
        if info.st_size > MAX_FILE_BYTES:
            raise ModelFileError("model_too_big", mb=MAX_FILE_BYTES // 2**20)
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # a file that grew since stat() is still refused by from_bytes
    except OSError:
        raise ModelFileError("model_unreadable") from None
    return from_bytes(data)


def from_bytes(data: bytes) -> LoadedModel:
    """Parse and validate model bytes: format, record, tensor names, shapes, dtypes and values."""
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError("model_too_big", mb=MAX_FILE_BYTES // 2**20)
    record = _read_record(data)
    config, spec, name = _parse_record(record)
    try:
        tensors = load_tensors(data)  # safetensors checks every tensor lies inside `data`, so this stays small
    except Exception:  # safetensors raises its own error types for a malformed body
        raise ModelFileError("model_not_safetensors") from None
    extra = {k: tensors.pop(k) for k in list(tensors) if k.startswith(calibration.TENSOR_PREFIX)}
    if sum(t.numel() for t in tensors.values()) != _weight_count(config):  # before CNN(config) allocates them
        raise ModelFileError("model_shape_mismatch")
    try:
        fitted = calibration.from_file(extra, record.get("calibration"), config)
    except (ValueError, KeyError, TypeError, OverflowError):
        raise ModelFileError("model_bad_metadata") from None
    model = CNN(config)
    _check_tensors(tensors, model.state_dict())
    model.load_state_dict(tensors)
    model.eval()
    return LoadedModel(name=name, model=model, input_spec=spec, meta=record, calibration=fitted)


_CORE_KEYS = {"format", "format_version", "name", "classes", "architecture", "input"}


def _weight_count(config: CNNConfig) -> int:
    """How many numbers the CNN for `config` holds (weights and biases), computed without building it."""
    count, in_ch = 0, config.in_channels
    for out_ch in config.filters:
        count += out_ch * in_ch * KERNEL_SIZE * KERNEL_SIZE + out_ch
        in_ch = out_ch
    return count + stage_shapes(config)["flatten"][0] * config.num_classes + config.num_classes


def _parse_record(record: dict) -> tuple[CNNConfig, InputSpec, str]:
    """The architecture, input spec and name from a record, refused unless they agree and stay in bounds."""
    try:
        config = CNNConfig.from_dict(record["architecture"])
        spec = InputSpec.from_dict(record["input"])
        classes = [str(c) for c in record["classes"]]
        name = str(record.get("name") or "model")
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int(Infinity)
        raise ModelFileError("model_bad_metadata") from None
    if not (list(config.classes) == classes and _in_bounds(config) and _spec_fits(spec, config)):
        raise ModelFileError("model_bad_metadata")
    if any(not isinstance(record.get(key, {}), dict) for key in ("dataset", "accuracy", "training")):
        raise ModelFileError("model_bad_metadata")  # the pages read these as mappings
    return config, spec, name


def _in_bounds(config: CNNConfig) -> bool:
    return (max(config.filters) <= MAX_FILTERS and config.input_size <= MAX_INPUT_SIZE
            and config.num_classes <= MAX_CLASSES)


def _spec_fits(spec: InputSpec, config: CNNConfig) -> bool:
    return (spec.channels == config.in_channels and spec.size == config.input_size
            and spec.preprocess in PREPROCESS_KINDS
            and (spec.preprocess != "mnist" or spec.channels == 1)
            and len(spec.mean) == len(spec.std) == spec.channels
            and all(abs(m) <= MAX_NORM for m in spec.mean)  # also refuses NaN and infinity
            and all(1 / MAX_NORM <= s <= MAX_NORM for s in spec.std))  # float32 keeps 1e-300 as 0 and 1e308 as inf


def _check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Same names and shapes as the model's own state dict, float32, and finite."""
    if set(tensors) != set(expected):
        raise ModelFileError("model_shape_mismatch")
    for key, tensor in tensors.items():
        if tensor.shape != expected[key].shape:
            raise ModelFileError("model_shape_mismatch")
        if tensor.dtype != torch.float32:
            raise ModelFileError("model_bad_dtype", dtype=str(tensor.dtype).removeprefix("torch."))
        if not torch.isfinite(tensor).all():
            raise ModelFileError("model_bad_values")


def _read_record(data: bytes) -> dict:
    """The JSON record from the safetensors header, read by hand so that nothing else is parsed first."""
    if len(data) < 8:
        raise ModelFileError("model_not_safetensors")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise ModelFileError("model_not_safetensors")
    try:
        header = json.loads(data[8:8 + header_len].decode("utf-8"))
        record = json.loads(header["__metadata__"][META_KEY])
    except (ValueError, KeyError, TypeError, RecursionError):  # ValueError: bad UTF-8, bad JSON, a 5000-digit int
        raise ModelFileError("model_not_imageai") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ModelFileError("model_not_imageai")
    if record.get("format_version") != FORMAT_VERSION:
        raise ModelFileError("model_bad_version", version=str(record.get("format_version"))[:20])
    return record

"""The bundled, trained models shipped with ImageAi, and resolving a model by name or path."""
from __future__ import annotations

from pathlib import Path

from imageai import modelfile
from imageai.modelfile import LoadedModel

MODELS_DIR = Path(__file__).parent / "models"
BUNDLED = ("digits", "shapes")


def bundled_path(name: str) -> Path:
    if name not in BUNDLED:
        raise ValueError(f"no bundled model {name!r}; choose from {BUNDLED}")
    return MODELS_DIR / f"{name}.safetensors"


def load_bundled(name: str) -> LoadedModel:
    """A fresh copy of a bundled model (callers may cache it, but must not mutate a shared one)."""
    return modelfile.load(bundled_path(name))


def resolve(name_or_path: str) -> LoadedModel:
    """'digits', 'shapes', or a path to a model file."""
    if name_or_path in BUNDLED:
        return load_bundled(name_or_path)
    return modelfile.load(name_or_path)

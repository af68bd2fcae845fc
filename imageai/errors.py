"""Errors a user can cause: each carries a catalog key and parameters, rendered in the user's language."""
from __future__ import annotations


class ImageAiError(Exception):
    """Base of every user-facing error; `key` names a catalog entry under `error.`."""

    def __init__(self, key: str, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(f"{key} {params}" if params else key)

    def message(self, lang: str = "en") -> str:
        from imageai.i18n import t  # late import: i18n must not depend on errors at import time

        return t(lang, f"error.{self.key}", **self.params)


class ImageReadError(ImageAiError):
    """An upload that is not a readable, supported image of a sane size."""


class ModelFileError(ImageAiError):
    """A model file that is not in ImageAi's format or does not match its own metadata."""


class DatasetError(ImageAiError):
    """A dataset that cannot be loaded or built (offline, too few classes, hostile archive...)."""


class TrainingError(ImageAiError):
    """Training that cannot go on (diverged, bad settings)."""

"""Language catalogs (English, Korean): every user-facing string is looked up here by key."""
from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "ko")
DEFAULT_LANGUAGE = "en"
_DIR = Path(__file__).parent


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, full + "."))
        else:
            out[full] = str(value)
    return out


@cache
def catalog(lang: str) -> dict[str, str]:
    """All strings of one language, keyed like 'stage.conv.role', merged from i18n/<lang>/*.toml."""
    merged: dict[str, str] = {}
    for path in sorted((_DIR / lang).glob("*.toml")):
        with open(path, "rb") as f:
            strings = _flatten(tomllib.load(f))
        clash = merged.keys() & strings.keys()
        if clash:
            raise ValueError(f"{path.name} redefines {sorted(clash)[:3]}")
        merged.update(strings)
    return merged


def t(lang: str, key: str, **params: object) -> str:
    """The string for `key` in `lang` (English if the language is unknown), formatted with `params`."""
    strings = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    text = strings.get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE).get(key, key)
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def language_from_locale(locale: str | None) -> str:
    """'ko-KR' -> 'ko'; anything unknown -> English."""
    if locale:
        code = locale.replace("_", "-").split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE

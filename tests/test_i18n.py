"""Language catalogs: same keys and placeholders in English and Korean, every string formats, locales map."""
import re
import string
import tomllib
import unicodedata
from pathlib import Path

import pytest

from imageai import figures
from imageai.i18n import LANGUAGES, _flatten, catalog, language_from_locale, t
from imageai.model import STAGE_KINDS, stage_shapes
from imageai.registry import load_bundled

I18N = Path(__file__).parents[1] / "imageai" / "i18n"
HEADINGS = ("title", "role", "how", "why", "result")


def _fields(text: str) -> dict[str, str]:
    """{placeholder name: format spec} of one catalog string."""
    return {name: spec or "" for _, name, spec, _ in string.Formatter().parse(text) if name is not None}


def _dummy(spec: str) -> object:
    """A value that any sane format spec accepts: an int for d/x, a float for f/%/e/g, else a word."""
    if spec.endswith(("d", "x", "o", "b", "c")):
        return 3
    if spec:
        return 0.5
    return "word"


def test_both_languages_have_the_same_keys_file_by_file():
    en_files = sorted(p.name for p in (I18N / "en").glob("*.toml"))
    assert en_files == sorted(p.name for p in (I18N / "ko").glob("*.toml"))
    for name in en_files:
        keys = [set(_flatten(tomllib.loads((I18N / lang / name).read_text("utf-8")))) for lang in LANGUAGES]
        assert keys[0] == keys[1], f"{name}: only in one language: {sorted(keys[0] ^ keys[1])}"
    assert catalog("en").keys() == catalog("ko").keys()


def test_placeholders_are_the_same_in_both_languages():
    en, ko = catalog("en"), catalog("ko")
    mismatched = {key: (sorted(_fields(en[key])), sorted(_fields(ko[key])))
                  for key in en if set(_fields(en[key])) != set(_fields(ko.get(key, "")))}
    assert not mismatched


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_string_is_non_empty_and_formats_with_dummy_params(lang):
    for key, text in catalog(lang).items():
        assert text.strip(), f"{lang} {key} is empty"
        fields = _fields(text)
        assert "" not in fields, f"{lang} {key} has a positional {{}}; name every placeholder"
        text.format(**{name: _dummy(spec) for name, spec in fields.items()})  # raises on a bad brace or spec


def test_live_texts_are_filled_with_this_picture_s_numbers():
    expected = "In your picture, **42%** of the values were negative and became 0."
    assert t("en", "stage.relu.live", zeroed=0.425) == expected
    assert "**42%**" in t("ko", "stage.relu.live", zeroed=0.425)
    assert t("en", "stage.name.conv", n=2) == "Convolution 2" and t("ko", "stage.name.conv", n=2) == "합성곱 층 2"
    assert "3, 5" in t("ko", "explore.out_of_domain", classes="3, 5")


@pytest.mark.parametrize("kind", [*STAGE_KINDS, "repeat"])
def test_every_stage_has_a_name_and_the_plan_s_four_headings(kind):
    for lang in LANGUAGES:
        strings = catalog(lang)
        assert f"stage.name.{kind}" in strings
        for heading in HEADINGS:
            assert f"stage.{kind}.{heading}" in strings, f"{lang}: stage.{kind}.{heading}"
    assert {f"stage.heading.{h}" for h in HEADINGS[1:]} <= catalog("ko").keys()
    assert kind == "repeat" or f"stage.short.{kind}" in catalog("en")


def test_every_figure_label_has_a_catalog_entry():
    for lang in LANGUAGES:
        assert {f"fig.label.{key}" for key in figures.LABEL_KEYS} <= catalog(lang).keys()


def test_korean_uses_the_glossary_terms_and_the_polite_haeyo_style():
    ko = catalog("ko")
    assert "합성곱 층" in ko["stage.name.conv"] and "특징 맵" in ko["stage.conv.role"]
    assert "활성화 함수" in ko["stage.relu.title"] and "비선형성" in ko["stage.relu.role"]
    assert "최대 풀링" in ko["stage.name.pool"] and "평탄화" in ko["stage.name.flatten"]
    assert "완전 연결 층" in ko["stage.name.dense"] and "**점수**(로짓)" in ko["stage.dense.role"]
    assert "소프트맥스" in ko["stage.output.how"] and "확률" in ko["stage.output.role"]
    assert ko["stage.heading.how"] == "작동 원리" and ko["stage.heading.why"] == "필요성"
    formal = {key: text for key, text in ko.items() if re.search(r"(습|입)니다", text)}
    assert not formal, f"합니다 style in a 해요 catalog: {sorted(formal)[:5]}"


def _closes(text: str, end: int) -> bool:
    """Whether the * run ending at `end` can close emphasis in CommonMark (is right-flanking)."""
    start = end - len(re.match(r"\**", text[end - 1::-1]).group())
    before, after = text[start - 1] if start else " ", text[end] if end < len(text) else " "
    return not before.isspace() and (not _punct(before) or after.isspace() or _punct(after))


def _punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"  # Unicode punctuation or symbol, as CommonMark counts them


@pytest.mark.parametrize("lang", LANGUAGES)
def test_bold_text_still_closes_before_a_korean_particle(lang):
    """'**(CNN)**을' stays literal in Markdown: a closing ** after punctuation needs a space or punctuation next."""
    for key, text in catalog(lang).items():
        text = text.format(**{name: _dummy(spec) for name, spec in _fields(text).items()})
        runs = [m for m in re.finditer(r"\*\*", text)]
        for closing in runs[1::2]:
            assert _closes(text, closing.end()), f"{lang} {key}: bold does not close near {closing.start()}"


@pytest.mark.parametrize("locale, lang", [
    ("ko-KR", "ko"), ("ko_KR", "ko"), ("ko", "ko"), ("en-US", "en"), ("en", "en"), (None, "en"), ("", "en"),
    ("fr", "en"), ("fr-FR", "en"),
])
def test_language_from_locale_falls_back_to_english(locale, lang):
    assert language_from_locale(locale) == lang


def test_unknown_language_and_unknown_key_fall_back():
    assert t("fr", "stage.heading.role") == "Role"
    assert t("ko", "no.such.key") == "no.such.key"


def test_the_worked_examples_use_the_bundled_digits_model_s_real_shapes():
    shapes = stage_shapes(load_bundled("digits").config)
    (c1, h1, w1), (c2, h2, w2), (length,) = shapes["pool1"], shapes["pool2"], shapes["flatten"]
    assert f"{c2} maps of {h2} × {w2} instead of {c1} of {h1} × {w1}" in t("en", "stage.repeat.result")
    assert f"{c2} maps of {h2} × {w2} become {c2} × {h2} × {w2} = {length} numbers" in t("en", "stage.flatten.how")
    assert f"{h1} × {w1} 맵 {c1}개 대신 {h2} × {w2} 맵 {c2}개" in t("ko", "stage.repeat.result")
    assert f"{c2} × {h2} × {w2} = {length}개" in t("ko", "stage.flatten.how")


def test_a_pooling_factor_that_is_not_whole_is_shown_as_it_is():
    text = t("en", "stage.pool.live_size", before="32×7×7", after="32×3×3", factor=49 / 9, kept=9)
    assert "5.44 times fewer" in text and "4 times fewer" in t("en", "stage.pool.live_size", before="a", after="b",
                                                                 factor=4.0, kept=196)

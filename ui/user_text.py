"""Showing the user's own words (class, file and model names) inside Markdown without them becoming Markdown."""
from __future__ import annotations

import re

import streamlit as st

from imageai.errors import ImageAiError

# CommonMark lets a backslash escape any ASCII punctuation; Streamlit adds :colour[..], :emoji: and $maths$.
_MARKDOWN_CHARS = re.compile(r"([!-/:-@\[-`{-~])")
# GitHub-flavoured Markdown also links bare 'http://…', 'www.…' and 'a@b.c' found in text, escaped or not: an
# invisible word joiner (U+2060) between ':' and '//', after 'www' and after '@' keeps them plain text.
_AUTOLINK_STARTS = re.compile(r"\\:(?=\\/\\/)|(?i:www)(?=\\\.)|\\@")
WORD_JOINER = "\u2060"


def md_escape(text: str) -> str:
    """'[x](http://evil)' -> '\\[x\\]\\(http\\:<U+2060>\\/\\/evil\\)': shown exactly as typed, never a link or a tag."""
    escaped = _MARKDOWN_CHARS.sub(r"\\\1", " ".join(str(text).split()))
    return _AUTOLINK_STARTS.sub(lambda m: m.group(0) + WORD_JOINER, escaped)


def show_error(lang: str, err: ImageAiError) -> None:
    """An error message may quote a class or file name, so it is shown escaped (catalog errors use no Markdown)."""
    st.error(md_escape(err.message(lang)))

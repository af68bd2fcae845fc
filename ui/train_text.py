"""Showing the user's own words (class, file and model names) inside Markdown without them becoming Markdown."""
from __future__ import annotations

import re

import streamlit as st

from imageai.errors import ImageAiError

# CommonMark lets a backslash escape any ASCII punctuation; Streamlit adds :colour[..], :emoji: and $maths$.
_MARKDOWN_CHARS = re.compile(r"([!-/:-@\[-`{-~])")


def md_escape(text: str) -> str:
    """'[x](http://evil)' -> '\\[x\\]\\(http\\:\\/\\/evil\\)': shown exactly as typed, never a link or a tag."""
    return _MARKDOWN_CHARS.sub(r"\\\1", " ".join(str(text).split()))


def show_error(lang: str, err: ImageAiError) -> None:
    """An error message may quote a class or file name, so it is shown escaped (catalog errors use no Markdown)."""
    st.error(md_escape(err.message(lang)))

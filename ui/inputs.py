"""The four ways to give the Explore page a picture: upload, camera, drawing, or a dataset sample."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import streamlit as st

from imageai.i18n import t
from imageai.images import EXTENSIONS
from imageai.samples import sample_image

SOURCES = ("upload", "camera", "draw", "sample")


@dataclass(frozen=True)
class Picture:
    """One input picture: encoded bytes (upload, camera, drawing) or a dataset sample array."""

    source: str
    label: str
    data: bytes | None = None
    array: np.ndarray | None = None  # a sample already in the model's format (uint8 HxW or HxWx3)
    true_class: str | None = None

    @cached_property  # computed once per picture: the memo and the "is it new?" check both ask on every rerun
    def digest(self) -> str:
        raw = self.data if self.data is not None else self.array.tobytes()
        return hashlib.sha1(raw).hexdigest()


def picture_input(lang: str, sample_dataset: str, preprocess: str) -> None:
    """Draw the chosen source's widget; a new picture from it becomes `st.session_state.explore_input`."""
    sources = [s for s in SOURCES if s != "draw" or preprocess == "mnist"]
    source = st.segmented_control(
        t(lang, "explore.source"), sources, key="explore_source", default="upload", required=True,
        format_func=lambda s: t(lang, f"explore.source_{s}"), wrap=True,  # a narrow column: wrap, never scroll
    )
    if source == "upload":
        file = st.file_uploader(t(lang, "explore.upload"), type=list(EXTENSIONS), key="explore_upload")
        if file is not None:
            _offer(Picture("upload", file.name, data=file.getvalue()))
    elif source == "camera":
        shot = st.camera_input(t(lang, "explore.camera"), key="explore_camera")
        if shot is not None:
            _offer(Picture("camera", t(lang, "explore.source_camera"), data=shot.getvalue()))
    elif source == "draw":
        _draw(lang)
    else:
        if st.button(t(lang, "explore.sample_button"), key="explore_sample_button", icon="🎲"):
            counter = st.session_state.get("explore_sample_counter", 0) + 1
            st.session_state.explore_sample_counter = counter
            array, label = sample_image(sample_dataset, st.session_state.explore_sample_seed, counter)
            _offer(Picture("sample", t(lang, "explore.sample_label", label=label), array=array, true_class=label))


def _draw(lang: str) -> None:
    from streamlit_drawable_canvas import st_canvas  # only importable inside Streamlit's runtime

    st.caption(t(lang, "explore.draw_hint"))
    result = st_canvas(
        stroke_width=18, stroke_color="#FFFFFF", background_color="#000000",
        height=280, width=280, drawing_mode="freedraw", return_image_data=True, key="explore_canvas",
    )
    data = result.image_bytes if result is not None else None
    if data and st.button(t(lang, "explore.draw_use"), key="explore_draw_use", type="primary"):
        _offer(Picture("draw", t(lang, "explore.source_draw"), data=data))


def _offer(picture: Picture) -> None:
    current = st.session_state.get("explore_input")
    if current is None or current.digest != picture.digest:
        st.session_state.explore_input = picture
        st.session_state.explore_stage = "input"
        for key in [k for k in st.session_state if str(k).startswith("pick_")]:
            del st.session_state[key]  # positions picked for the old picture start afresh

"""Train page, last step: this session's models — explain, download, rename, delete, and load a model file."""
from __future__ import annotations

import re

import streamlit as st

from imageai import modelfile
from imageai.i18n import t
from ui.models import model_loader

EXPLORE_PAGE = "pages/views/explore.py"
_UNSAFE_FILE_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def file_name(name: str) -> str:
    """'my digits/v2' -> 'my digits_v2.safetensors': a model's name made safe as a download file name."""
    stem = _UNSAFE_FILE_CHARS.sub("_", name).strip(" ._")[:80] or "model"
    return f"{stem}.safetensors"


def explain_with(key: str) -> None:
    """Open the Explore page with this model selected."""
    st.session_state.explore_model = key
    st.session_state.explore_model_pending = key  # the Explore picker applies this on its next run
    st.switch_page(EXPLORE_PAGE)


def model_actions(lang: str, key: str, *, prefix: str) -> None:
    """'Explain with this model' and 'Download', with the reminder that the model lives only in this session."""
    loaded = st.session_state.user_models.get(key)
    if loaded is None:  # deleted from the list below
        return
    explain_col, download_col = st.columns(2)
    if explain_col.button(t(lang, "trainpage.models.explain"), key=f"{prefix}_explain_{key}", type="primary"):
        explain_with(key)
    download_col.download_button(t(lang, "trainpage.models.download"), data=lambda: modelfile.to_bytes(loaded),
                                 file_name=file_name(loaded.name), mime="application/octet-stream",
                                 key=f"{prefix}_download_{key}", on_click="ignore")
    st.caption(t(lang, "trainpage.models.session_only"))


def _rename(key: str) -> None:
    new = " ".join(str(st.session_state.get(f"train_rename_{key}", "")).split())
    loaded = st.session_state.user_models.get(key)
    if loaded is not None and new:
        loaded.name = new[:80]


def _delete(key: str) -> None:
    st.session_state.user_models.pop(key, None)
    if st.session_state.get("explore_model") == key:
        st.session_state.explore_model = "digits"


def session_models(lang: str) -> None:
    """Every model trained or loaded in this session, each with rename, delete, explain and download."""
    st.subheader(t(lang, "trainpage.models.title"))
    st.caption(t(lang, "trainpage.models.note"))
    models = st.session_state.user_models
    if not models:
        st.caption(t(lang, "trainpage.models.none"))
    for key, loaded in list(models.items()):
        with st.container(border=True):
            name_col, delete_col = st.columns([4, 1], vertical_alignment="bottom")
            st.session_state.setdefault(f"train_rename_{key}", loaded.name)
            name_col.text_input(t(lang, "trainpage.models.name"), key=f"train_rename_{key}",
                                on_change=_rename, args=(key,), max_chars=80)
            delete_col.button(t(lang, "trainpage.models.delete"), key=f"train_delete_{key}",
                              on_click=_delete, args=(key,))
            st.text(_summary(lang, loaded))
            model_actions(lang, key, prefix="train_list")
    with st.expander(t(lang, "model.load_expander")):
        model_loader(lang, key="train_model_file")


def _summary(lang: str, loaded) -> str:
    """'3 classes: cat, dog, bird · test accuracy 94.0%' as plain text."""
    accuracy = (loaded.meta.get("accuracy") or {}).get("test")
    text = t(lang, "trainpage.models.classes", count=len(loaded.classes), names=", ".join(loaded.classes))
    if isinstance(accuracy, (int, float)):
        text += " · " + t(lang, "trainpage.models.accuracy", accuracy=f"{accuracy:.1%}")
    return text

"""Choosing a model: the bundled ones (shared, read-only) and this session's own."""
from __future__ import annotations

import streamlit as st

from imageai import modelfile, registry
from imageai.errors import ImageAiError
from imageai.i18n import t
from imageai.modelfile import LoadedModel
from ui.user_text import md_escape


@st.cache_resource(show_spinner=False)
def bundled(name: str) -> LoadedModel:
    """Shared by every session: never mutated (tracing works on a per-call copy)."""
    return registry.load_bundled(name)


def model_choices() -> list[str]:
    return [*registry.BUNDLED, *st.session_state.user_models]


def get_model(key: str) -> LoadedModel:
    if key in registry.BUNDLED:
        return bundled(key)
    return st.session_state.user_models[key]


def model_label(lang: str, key: str) -> str:
    if key in registry.BUNDLED:
        return t(lang, f"model.bundled_{key}")
    return t(lang, "model.session", name=" ".join(st.session_state.user_models[key].name.split()))


def add_user_model(loaded: LoadedModel) -> str:
    """Keep a model in this session only; returns its id."""
    counter = st.session_state.get("user_model_counter", 0) + 1
    st.session_state.user_model_counter = counter
    key = f"user-{counter}"
    st.session_state.user_models[key] = loaded
    return key


def model_picker(lang: str, key: str = "explore_model") -> str:
    """Selectbox over all models this session can use; returns the chosen model's id."""
    choices = model_choices()
    pending = st.session_state.pop(f"{key}_pending", None)
    if pending in choices:
        st.session_state[key] = pending
    if st.session_state.get(key) not in choices:
        st.session_state[key] = choices[0]
    labels = {k: model_label(lang, k) for k in choices}  # made now: AppTest calls format_func between runs
    return st.selectbox(t(lang, "model.choose"), choices, key=key, format_func=labels.__getitem__)


def model_loader(lang: str, key: str, select_key: str = "explore_model") -> None:
    """Upload a .safetensors model file; it is validated without unpickling and kept in this session."""
    file = st.file_uploader(t(lang, "model.load"), type=["safetensors"], key=key)
    if file is None:
        return
    file_id = getattr(file, "file_id", file.name)
    done = st.session_state.get(f"{key}_done")
    if done is None or done[0] != file_id:
        try:
            loaded = modelfile.from_bytes(file.getvalue())
        except ImageAiError as err:
            done = (file_id, err)
        else:
            done = (file_id, add_user_model(loaded))
            st.session_state[f"{select_key}_pending"] = done[1]
        st.session_state[f"{key}_done"] = done
        if not isinstance(done[1], ImageAiError):
            st.rerun()
    if isinstance(done[1], ImageAiError):
        st.error(done[1].message(lang))
    elif done[1] in st.session_state.user_models:
        st.success(t(lang, "model.loaded", name=md_escape(st.session_state.user_models[done[1]].name)))

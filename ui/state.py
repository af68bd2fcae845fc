"""Per-session state: defaults set once per session, never shared between users."""
from __future__ import annotations

import secrets

import streamlit as st


def init_session(default_language: str) -> None:
    """Set this session's defaults; existing values (a chosen language, trained models) are kept."""
    st.session_state.setdefault("lang", default_language)
    st.session_state.setdefault("user_models", {})  # id -> LoadedModel trained or loaded in this session
    st.session_state.setdefault("explore_model", "digits")
    st.session_state.setdefault("explore_input", None)  # ui.inputs.Picture for the image being explained
    st.session_state.setdefault("explore_stage", "input")
    st.session_state.setdefault("explore_sample_seed", secrets.randbits(32))  # this session's order of samples


def lang() -> str:
    return st.session_state.get("lang", "en")

"""ImageAi's entry point: session defaults, language switch, and navigation over the pages."""
import pandas  # noqa: F401  imported whole before any page draws a figure, see below
import streamlit as st

from imageai.i18n import LANGUAGES, language_from_locale, t
from ui.state import init_session

# Plotly checks for pandas with sys.modules.get("pandas"): while one session's thread is still importing pandas,
# another session's figure would get the half-made module and fail ("partially initialized module 'pandas'").
# The import statement above waits for an import in progress, and every page runs this file first.

st.set_page_config(page_title="ImageAi", page_icon="🧠", layout="wide")
init_session(default_language=language_from_locale(st.context.locale))

with st.sidebar:
    st.selectbox(
        t(st.session_state.lang, "app.language"), LANGUAGES, key="lang",
        format_func=lambda code: {"en": "English", "ko": "한국어"}[code],
    )
lang = st.session_state.lang

pages = [
    st.Page("pages/views/home.py", title=t(lang, "nav.home"), icon="🏠", url_path="", default=True),
    st.Page("pages/views/explore.py", title=t(lang, "nav.explore"), icon="🔍", url_path="explore"),
    st.Page("pages/views/train.py", title=t(lang, "nav.train"), icon="🏋️", url_path="train"),
]
st.navigation(pages).run()

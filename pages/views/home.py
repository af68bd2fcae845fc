"""Home: why a CNN rather than classic machine learning, what it is, and its pipeline of stages."""
import streamlit as st

from imageai import charts
from imageai.i18n import t
from imageai.model import stage_names, stage_shapes
from ui.models import bundled
from ui.stage_views import stage_title
from ui.state import lang

lang = lang()
st.title(t(lang, "home.title"))
st.markdown(t(lang, "home.intro"))

st.header(t(lang, "home.why.title"))
classic, deep = st.columns(2)
classic.info(t(lang, "home.why.classic"))
deep.success(t(lang, "home.why.deep"))
st.markdown(t(lang, "home.why.cnn"))

st.header(t(lang, "home.what.title"))
st.markdown(t(lang, "home.what.body"))

st.header(t(lang, "home.pipeline.title"))
st.markdown(t(lang, "home.pipeline.body"))
config = bundled("digits").config  # the shipped digits model: 1×28×28 in, 2 blocks, 10 classes
names = stage_names(config.blocks)
short = [stage_title(lang, n, short=True) for n in names]
st.plotly_chart(charts.pipeline_figure(names, stage_shapes(config), labels=short),
                key="home_pipeline", config={"displayModeBar": False}, width="stretch")
st.caption(t(lang, "home.pipeline.caption"))

st.header(t(lang, "home.can.title"))
st.markdown(t(lang, "home.can.explore"))
st.markdown(t(lang, "home.can.train"))
st.markdown(t(lang, "home.can.models"))
go_explore, go_train, _ = st.columns([1, 1, 2])
go_explore.page_link("pages/views/explore.py", label=t(lang, "home.can.start_explore"), icon="🔍")
go_train.page_link("pages/views/train.py", label=t(lang, "home.can.start_train"), icon="🏋️")

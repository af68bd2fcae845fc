"""Train: pick a dataset, set the training, watch the CNN learn, then explain, download or reload the model."""
import streamlit as st

from imageai.i18n import t
from ui.state import lang
from ui.train_data import dataset_picker, gallery
from ui.train_models import session_models
from ui.train_views import live_view, results, server_load, settings, train_button

lang = lang()
st.title(t(lang, "trainpage.title"))
st.caption(t(lang, "trainpage.intro"))
st.info(t(lang, "trainpage.session_note"), icon="ℹ️")

st.header(t(lang, "trainpage.step.data"))
choice, dataset = dataset_picker(lang)
if dataset is not None:
    with st.expander(t(lang, "trainpage.data.examples"), expanded=True):
        gallery(lang, dataset)

st.header(t(lang, "trainpage.step.settings"))
config = settings(lang, choice)

st.header(t(lang, "trainpage.step.train"))
st.caption(t(lang, "trainpage.train_note"))
server_load(lang)
train_button(lang, dataset, config)
live_view(lang)
results(lang)

st.divider()
session_models(lang)

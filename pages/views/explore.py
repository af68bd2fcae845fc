"""Explore: give the CNN a picture and step through every stage with this picture's numbers."""
import streamlit as st

from imageai.errors import ImageAiError
from imageai.i18n import t
from imageai.samples import sample_dataset_for
from ui.explain import explanation_for, prediction_banner, report_download
from ui.inputs import picture_input
from ui.models import get_model, model_loader, model_picker
from ui.stage_views import pipeline_preview, stage_stepper, stage_view
from ui.state import lang

lang = lang()
st.title(t(lang, "explore.title"))
st.caption(t(lang, "explore.intro"))

left, right = st.columns([1, 2], gap="large")
with left:
    model_key = model_picker(lang)
    loaded = get_model(model_key)
    st.markdown(t(lang, "explore.knows"))
    st.text(", ".join(loaded.classes))  # plain text: class names may come from a user's upload
    with st.expander(t(lang, "model.load_expander")):
        model_loader(lang, key="explore_model_file")
    picture_input(lang, sample_dataset_for(loaded.meta), loaded.input_spec.preprocess)

picture = st.session_state.explore_input
with right:
    if picture is None:
        st.info(t(lang, "explore.no_picture"))
        pipeline_preview(lang, loaded)  # what the picture will go through (and plotly.js loads meanwhile)
        st.stop()
    try:
        explanation = explanation_for(model_key, loaded, picture)
    except ImageAiError as err:
        st.error(err.message(lang))
        st.stop()
    prediction_banner(lang, loaded, explanation, picture)

stage = stage_stepper(lang, explanation)
stage_view(lang, loaded, explanation, stage)
report_download(lang, loaded, explanation)

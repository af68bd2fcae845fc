"""The Explore page's explanation: computed once per (model, picture) in this session, then shown."""
from __future__ import annotations

import streamlit as st
from PIL import Image

from imageai.i18n import t
from imageai.images import fit_long_side
from imageai.modelfile import LoadedModel
from imageai.pipeline import Explanation, assess, explain_array, explain_bytes
from imageai.report import report_json
from ui.inputs import Picture
from ui.user_text import md_escape


def explanation_for(model_key: str, loaded: LoadedModel, picture: Picture) -> Explanation:
    """Memoised in this session only: a rerun (a click on a stage) does not trace again."""
    memo_key = (model_key, id(loaded.model), picture.digest)
    memo = st.session_state.get("_explanation")
    if memo is not None and memo[0] == memo_key:
        return memo[1]
    if picture.data is not None:
        explanation = explain_bytes(loaded, picture.data)
    else:
        explanation = explain_array(loaded, picture.array)
    st.session_state._explanation = (memo_key, explanation)
    return explanation


BANNER_PX = 160


def fit_box(img: Image.Image, side: int) -> Image.Image:
    """Scaled so its longer side is `side` pixels: small samples (28 x 28) grow with crisp pixels, photos shrink
    smoothly, and a 5000 x 1 strip stays a strip (st.image would round it to 0 rows)."""
    return fit_long_side(img, side, Image.Resampling.NEAREST)


def prediction_banner(lang: str, loaded: LoadedModel, explanation: Explanation, picture: Picture) -> None:
    """The prediction at once, with an honest word when the picture looks unlike anything the model knows."""
    predicted = loaded.classes[explanation.prediction]
    cols = st.columns([1, 1, 2])
    cols[0].image(fit_box(explanation.prepared.original, BANNER_PX), caption=md_escape(picture.label),  # Markdown
                  width="content")  # its own size, but never wider than its column
    cols[1].metric(t(lang, "explore.prediction"), md_escape(predicted),  # a metric's value is Markdown
                   f"{explanation.probability:.1%}", delta_color="off",
                   delta_arrow="off", border=True)
    with cols[2]:
        verdict = assess(explanation, loaded)
        if verdict == "unfamiliar":
            st.warning(t(lang, "explore.out_of_domain", classes=md_escape(", ".join(loaded.classes))))
        elif verdict == "unsure":
            st.info(t(lang, "explore.unsure", probability=explanation.probability))
        if picture.true_class is not None:
            st.caption(t(lang, "explore.true_class", label=picture.true_class))


def report_download(lang: str, loaded: LoadedModel, explanation: Explanation) -> None:
    """The same JSON as `python -m imageai explain --json --values`, as a download."""
    st.download_button(
        t(lang, "explore.download_json"),
        lambda: report_json(explanation.trace, loaded.name, loaded.classes, values=True),  # built on click
        file_name="imageai-explanation.json",
        mime="application/json", key="explore_download_json", icon="⬇️", on_click="ignore",
    )

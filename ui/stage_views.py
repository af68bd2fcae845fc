"""The stepper over the pipeline and, for the current stage, the plan's four headings beside its visual."""
from __future__ import annotations

import streamlit as st

from imageai import charts
from imageai.figures import shape_text
from imageai.i18n import t
from imageai.model import stage_block, stage_kind, stage_names, stage_shapes
from imageai.modelfile import LoadedModel
from imageai.pipeline import Explanation
from ui import stage_visuals

HEADINGS = ("role", "how", "why", "result")


def stage_title(lang: str, stage: str, short: bool = False) -> str:
    block = stage_block(stage)
    group = "short" if short else "name"
    return t(lang, f"stage.{group}.{stage_kind(stage)}", n=block if block is not None else "")


def pipeline_preview(lang: str, loaded: LoadedModel) -> None:
    """Every stage of the chosen model with the shape it will produce, before any picture is given."""
    names = stage_names(loaded.config.blocks)
    st.plotly_chart(charts.pipeline_figure(names, stage_shapes(loaded.config),
                                            labels=[stage_title(lang, n, short=True) for n in names]),
                    key="explore_pipeline", config={"displayModeBar": False}, width="stretch")
    st.caption(t(lang, "home.pipeline.caption"))


def _move(names: list[str], step: int) -> None:
    current = st.session_state.get("explore_stage", names[0])
    index = names.index(current) if current in names else 0
    st.session_state.explore_stage = names[max(0, min(len(names) - 1, index + step))]


def stage_stepper(lang: str, explanation: Explanation) -> str:
    """The pipeline ribbon (every stage with its tensor shape), Previous/Next and direct jump."""
    names = list(explanation.trace.stage_names)
    if st.session_state.get("explore_stage") not in names:
        st.session_state.explore_stage = names[0]
    st.divider()
    st.segmented_control(
        t(lang, "explore.stepper"), names, key="explore_stage", required=True,
        format_func=lambda n: f"{stage_title(lang, n, short=True)} · {shape_text(explanation.trace.shape(n))}",
    )
    stage = st.session_state.explore_stage
    index = names.index(stage)
    prev_col, where, next_col = st.columns([1, 3, 1])
    prev_col.button(t(lang, "explore.previous"), key="explore_prev", icon="⬅️", disabled=index == 0,
                    on_click=_move, args=(names, -1), width="stretch")
    where.caption(t(lang, "explore.step_of", index=index + 1, total=len(names)))
    next_col.button(t(lang, "explore.next"), key="explore_next", icon="➡️", disabled=index == len(names) - 1,
                    on_click=_move, args=(names, 1), width="stretch")
    return stage


def stage_view(lang: str, loaded: LoadedModel, explanation: Explanation, stage: str) -> None:
    """One stage: its title and shape, the four headings, and its visual with this picture's numbers."""
    kind, block = stage_kind(stage), stage_block(stage)
    st.subheader(f"{stage_title(lang, stage)}  ·  {shape_text(explanation.trace.shape(stage))}")
    st.caption(t(lang, f"stage.{kind}.title"))
    if kind == "conv" and block == 2:
        with st.container(border=True):
            st.markdown(f"**{t(lang, 'stage.repeat.title')}**")
            for heading in HEADINGS:
                key = f"stage.repeat.{heading}"
                if t(lang, key) != key:
                    st.markdown(f"*{t(lang, f'stage.heading.{heading}')}* — {t(lang, key)}")
    text, visual = st.columns([2, 3], gap="large")
    with text:
        for heading in HEADINGS:
            st.markdown(f"**{t(lang, f'stage.heading.{heading}')}**")
            st.markdown(t(lang, f"stage.{kind}.{heading}"))
    with visual:
        stage_visuals.draw(lang, kind, stage, loaded, explanation)

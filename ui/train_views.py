"""Train page, steps 2-4: the settings, the Train and Stop buttons, the live view, and the results."""
from __future__ import annotations

import os
import time
from typing import Callable

import streamlit as st

from imageai import train, train_figures
from imageai.datasets import Dataset
from imageai.errors import ImageAiError
from imageai.i18n import t
from imageai.jobs import JobHandle, JobState, TrainingJob, manager
from ui.models import add_user_model
from ui.train_models import model_actions
from ui.user_text import show_error

POLL_S = 1.0  # the live view redraws once a second: curves, progress and the first-layer filters
LIMIT_ENV = "IMAGEAI_TRAIN_LIMIT"  # test-only: cut the dataset to its first N training and N test images
BATCH_SIZES = [8, 16, 32, 64, 128, 256]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
FILTERS = [2, 4, 8, 16, 32]


def handle() -> JobHandle:
    """This session's hold on its training; when Streamlit drops the session, the training ends with it."""
    return st.session_state.setdefault("train_handle", JobHandle())


def settings(lang: str, choice: str) -> train.TrainConfig:
    """Widgets for every TrainConfig field, keyed per dataset so that each starts at its own defaults."""
    d = train.default_config(choice)

    def key(field: str) -> str:
        return f"train_{field}_{choice}"

    def label(field: str) -> str:
        return t(lang, f"trainpage.settings.{field}")

    def tip(field: str) -> str:
        return t(lang, f"trainpage.settings.{field}_help")

    with st.expander(t(lang, "trainpage.settings.title"), expanded=True):
        a, b, c = st.columns(3)
        epochs = a.number_input(label("epochs"), 1, 100, d.epochs, key=key("epochs"), help=tip("epochs"))
        batch = a.select_slider(label("batch_size"), _with(BATCH_SIZES, d.batch_size), d.batch_size,
                                key=key("batch_size"), help=tip("batch_size"))
        augment = a.toggle(label("augment"), d.augment, key=key("augment"), help=tip("augment"))
        lr = b.select_slider(label("learning_rate"), _with(LEARNING_RATES, d.learning_rate), d.learning_rate,
                             key=key("learning_rate"), help=tip("learning_rate"), format_func=lambda v: f"{v:g}")
        optimizer = b.radio(label("optimizer"), train.OPTIMIZERS, train.OPTIMIZERS.index(d.optimizer),
                            key=key("optimizer"), help=tip("optimizer"), horizontal=True,
                            format_func=lambda o: t(lang, f"trainpage.settings.optimizer_{o}"))
        val_share = b.slider(label("val_share"), 0.0, 0.5, d.val_share, 0.05, key=key("val_share"),
                             help=tip("val_share"), format="%.2f")
        blocks = c.slider(label("blocks"), 1, 3, d.blocks, key=key("blocks"), help=tip("blocks"))
        filters = c.select_slider(label("filters"), _with(FILTERS, d.filters), d.filters, key=key("filters"),
                                  help=tip("filters"))
        seed = c.number_input(label("seed"), 0, 2**31 - 1, d.seed, key=key("seed"), help=tip("seed"))
    return train.TrainConfig(epochs=int(epochs), batch_size=int(batch), learning_rate=float(lr),
                             optimizer=optimizer, blocks=int(blocks), filters=int(filters), augment=bool(augment),
                             val_share=float(val_share), seed=int(seed))


def _with(options: list, value) -> list:
    return sorted({*options, value})


def train_button(lang: str, dataset: Dataset | None, config: train.TrainConfig) -> None:
    """Start a training in the background; refused (with a message) while this session's training is active."""
    job = handle().job
    busy = job is not None and job.state.active
    if not st.button(t(lang, "trainpage.train"), key="train_start", type="primary",
                     disabled=dataset is None or busy):
        return
    count = st.session_state.get("train_count", 0) + 1
    try:
        handle().start(_limited(dataset), config, name=f"{dataset.name}-{count}", owner_alive=session_alive())
    except ImageAiError as err:
        show_error(lang, err)
        return
    st.session_state.train_count = count
    st.rerun()  # redraw with the Train button disabled and the live view showing


def server_load(lang: str) -> None:
    """How busy the shared server is: trainings running and waiting, out of its cap (all sessions together)."""
    running, queued = manager().counts()
    st.caption(t(lang, "trainpage.server_load", running=running, queued=queued, capacity=manager().max_trainings))


def session_alive() -> Callable[[], bool] | None:
    """For the worker: is this browser session still connected, or gone for less than Streamlit's disconnect
    timeout (after which Streamlit drops it)? Holds only the session's id. None outside a server (AppTest)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    ttl = float(st.get_option("server.disconnectedSessionTTL"))
    gone_since: list[float] = []  # when the worker first found the session disconnected; empty while connected

    def alive() -> bool:
        if runtime.is_active_session(session_id):
            gone_since.clear()
            return True
        if not gone_since:
            gone_since.append(time.monotonic())
        return time.monotonic() - gone_since[0] < ttl

    return alive


def _limited(dataset: Dataset) -> Dataset:
    limit = os.environ.get(LIMIT_ENV)
    return dataset.limited(int(limit)) if limit else dataset


def live_view(lang: str) -> None:
    """While the session's training is queued or running, redraw its state every POLL_S seconds."""
    job = handle().job
    if job is not None and job.state.active:
        st.fragment(_live, run_every=POLL_S)(lang)


def _live(lang: str) -> None:
    job = handle().job
    if job is None or not job.state.active:
        st.rerun()  # it has just ended: redraw the whole page with the results, and stop polling
    view = job.view()
    if view.state is JobState.QUEUED:
        st.info(t(lang, "trainpage.live.queued", place=view.place, capacity=view.capacity))
    else:
        _progress(lang, job, view.progress)
        st.plotly_chart(train_figures.curves(view.batch_points, view.epoch_points, curve_labels(lang)),
                        key="train_live_curves")
        if view.kernels is not None:
            st.markdown(t(lang, "trainpage.live.kernels"))
            st.plotly_chart(train_figures.kernels_figure(view.kernels, labels=kernel_labels(lang)),
                            key="train_live_kernels")
    st.button(t(lang, "trainpage.stop"), key="train_stop", on_click=job.stop, help=t(lang, "trainpage.stop_help"))


def _progress(lang: str, job: TrainingJob, p) -> None:
    if p is None:
        st.progress(0.0, text=t(lang, "trainpage.live.starting"))
        return
    st.progress(min(p.done / max(p.total, 1), 1.0), text=t(
        lang, "trainpage.live.progress", epoch=p.epoch, epochs=job.config.epochs,
        percent=round(100 * p.done / max(p.total, 1)), left=duration(lang, p.eta)))
    st.caption(t(lang, "trainpage.live.speed", images=p.seen, speed=round(p.seen / max(p.elapsed, 1e-6)),
                 elapsed=duration(lang, p.elapsed)))


def duration(lang: str, seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return t(lang, "trainpage.time.seconds", s=seconds)
    return t(lang, "trainpage.time.minutes", m=seconds // 60, s=f"{seconds % 60:02d}")


def curve_labels(lang: str) -> dict[str, str]:
    return {k: t(lang, f"trainpage.curves.{k}") for k in ("loss", "accuracy", "train", "validation", "epoch")}


def kernel_labels(lang: str) -> dict[str, str]:
    return {"tile": t(lang, "trainpage.kernels.tile"), "value": t(lang, "trainpage.kernels.value")}


def _keep(job: TrainingJob) -> str:
    """Add a finished job's model to this session's models, once; returns its id."""
    kept = st.session_state.setdefault("train_kept", {})
    if job.id not in kept:
        loaded = job.outcome.result.loaded
        loaded.name = job.name
        kept[job.id] = add_user_model(loaded)
    return kept[job.id]


def results(lang: str) -> None:
    """After training: accuracy, curves, the model's actions, confusion matrix, mistakes, kernels."""
    job = handle().job
    if job is None or job.state.active:
        return
    if job.state is JobState.FAILED:
        show_error(lang, job.error)
        return
    if job.state is JobState.CANCELLED:
        st.info(t(lang, "trainpage.result.cancelled"))
        return
    outcome, view = job.outcome, job.view()
    result = outcome.result
    model_key = _keep(job)
    st.subheader(t(lang, "trainpage.result.title"))
    st.success(t(lang, f"trainpage.result.{job.state.value}", epochs=len(result.history)))
    st.metric(t(lang, "trainpage.result.test_accuracy"), f"{result.test_accuracy:.1%}",
              help=t(lang, "trainpage.result.test_accuracy_help", count=int(result.confusion.sum())))
    model_actions(lang, model_key, prefix="train_result")
    st.plotly_chart(train_figures.curves(view.batch_points, view.epoch_points, curve_labels(lang)),
                    key="train_result_curves")
    st.markdown(t(lang, "trainpage.result.confusion"))
    st.plotly_chart(train_figures.confusion(result.confusion, outcome.classes, {
        "true": t(lang, "trainpage.result.true"), "predicted": t(lang, "trainpage.result.predicted")}),
        key="train_result_confusion")
    mistakes(lang, outcome.mistakes, outcome.classes)
    kernels_before_after(lang, result.initial_kernels, view.kernels)  # the job's copy at the end


def mistakes(lang: str, records: list[dict], classes: tuple[str, ...]) -> None:
    st.markdown(t(lang, "trainpage.result.mistakes"))
    if not records:
        st.caption(t(lang, "trainpage.result.no_mistakes"))
        return
    from ui.train_data import enlarge

    columns = st.columns(6)
    for i, m in enumerate(records):
        with columns[i % 6]:
            st.image(enlarge(m["image"], 84), width=84)
            st.text(t(lang, "trainpage.result.mistake", true=classes[m["true"]], pred=classes[m["pred"]],
                      confidence=f"{m['confidence']:.0%}"))  # plain text: class names are the user's


def kernels_before_after(lang: str, initial, learned) -> None:
    st.markdown(t(lang, "trainpage.result.kernels"))
    zmax = train_figures.shared_zmax(initial, learned)
    before, after = st.columns(2)
    before.plotly_chart(train_figures.kernels_figure(initial, zmax=zmax, labels=kernel_labels(lang),
                                                     title=t(lang, "trainpage.result.kernels_before")),
                        key="train_result_kernels_before")
    after.plotly_chart(train_figures.kernels_figure(learned, zmax=zmax, labels=kernel_labels(lang),
                                                    title=t(lang, "trainpage.result.kernels_after")),
                       key="train_result_kernels_after")

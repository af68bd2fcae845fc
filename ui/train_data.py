"""Train page, step 1: choosing a dataset (built-in, downloaded, or the user's own photos) and a gallery of it."""
from __future__ import annotations

import numpy as np
import streamlit as st

from imageai import datasets, own_photos, tv_datasets
from imageai.datasets import Dataset
from imageai.errors import DatasetError, ImageAiError
from imageai.i18n import t
from imageai.images import EXTENSIONS
from imageai.own_photos import SkippedFile
from ui.user_text import show_error

BUILT_IN = ("digits", "shapes")
OWN = "own_photos"
CHOICES = (*BUILT_IN, OWN, *tv_datasets.SOURCES)
GALLERY_PER_CLASS = 8
GALLERY_MAX_CLASSES = 12
GALLERY_PX = 56  # each example is drawn at least this wide, enlarged by whole pixels (no blur)


def built_in(name: str) -> Dataset:
    """Shared by every session and read-only (the same copy the Explore page's samples come from)."""
    return datasets.shared_dataset(name)


@st.cache_resource(show_spinner=False)
def downloaded(name: str) -> Dataset:
    """A torchvision dataset already on disk (raises DatasetError('tv_not_downloaded') otherwise); shared, read-only."""
    return tv_datasets.load_torchvision(name, download=False)


def choice_label(lang: str, choice: str) -> str:
    if choice in tv_datasets.SOURCES:
        return t(lang, "trainpage.data.online", name=t(lang, f"tvdata.{choice}.title"))
    return t(lang, f"trainpage.data.choice.{choice}")


def dataset_picker(lang: str) -> tuple[str, Dataset | None]:
    """The chosen dataset's key and the dataset, or None while it is not ready (no photos, not downloaded)."""
    choice = st.selectbox(t(lang, "trainpage.data.choose"), CHOICES, key="train_dataset",
                          format_func=lambda c: choice_label(lang, c))
    if choice in BUILT_IN:
        st.caption(t(lang, f"trainpage.data.about.{choice}"))
        try:
            return choice, built_in(choice)
        except ImageAiError as err:
            show_error(lang, err)
            return choice, None
    if choice == OWN:
        return choice, own_photos_dataset(lang)
    return choice, torchvision_dataset(lang, choice)


def torchvision_dataset(lang: str, name: str) -> Dataset | None:
    """MNIST, Fashion-MNIST or CIFAR-10: loaded from the cache folder, or downloaded once with a progress bar."""
    st.caption(t(lang, f"tvdata.{name}.description"))
    try:
        return downloaded(name)
    except DatasetError as err:
        if err.key != "tv_not_downloaded":
            show_error(lang, err)
            return None
    st.info(t(lang, "trainpage.data.needs_download", folder=str(tv_datasets.data_dir())))
    if not st.button(t(lang, "trainpage.data.download"), key=f"train_download_{name}"):
        return None
    bar = st.progress(0.0)
    try:
        tv_datasets.fetch(name, progress=lambda stage, fraction: bar.progress(
            min(max(fraction, 0.0), 1.0), text=t(lang, f"tvdata.stage.{stage}")))
        dataset = downloaded(name)  # read once, into the cache every session shares
    except ImageAiError as err:
        show_error(lang, err)
        return None
    bar.empty()
    return dataset


def own_photos_dataset(lang: str) -> Dataset | None:
    """The user's photos as a Dataset; rebuilt only when the uploaded files change."""
    st.caption(t(lang, "trainpage.own.about"))
    modes = ("classes", "folder", "zip")
    mode = st.radio(t(lang, "trainpage.own.mode"), modes, key="train_own_mode", horizontal=True,
                    format_func=lambda m: t(lang, f"trainpage.own.mode_{m}"))
    signature, build = _own_uploads(lang, mode)
    if build is None:
        return None
    memo = st.session_state.get("train_own_memo")
    if memo is None or memo[0] != signature:
        st.session_state.pop("train_own_memo", None)  # free the old photos before decoding new ones
        with st.spinner(t(lang, "trainpage.own.reading")):
            memo = (signature, *_build(build))
        st.session_state.train_own_memo = memo
    _, summary, result = memo
    if summary is not None:
        photo_summary(lang, *summary)
    if isinstance(result, ImageAiError):
        show_error(lang, result)
        return None
    return result


def _build(build) -> tuple[tuple[dict[str, int], list] | None, Dataset | ImageAiError]:
    """(photos per class and the files left out, the Dataset or the error): the per-class photo lists are let go
    once the Dataset holds the same pixels, so a session keeps one copy of its photos."""
    try:
        collection = build()
    except ImageAiError as err:
        return None, err
    summary = (collection.counts, collection.skipped)
    try:
        return summary, own_photos.to_dataset(collection)
    except ImageAiError as err:
        return summary, err


def _own_uploads(lang: str, mode: str):
    """(signature of the current uploads, a function that reads them) — or (None, None) with nothing uploaded."""
    if mode == "classes":
        files = class_uploaders(lang)
        if not files:
            return None, None
        signature = ("classes", tuple((name, tuple(f.file_id for f in fs)) for name, fs in files.items()))
        return signature, lambda: own_photos.collect_from_classes(
            {name: [(f.name, f.getvalue()) for f in fs] for name, fs in files.items()})
    if mode == "folder":
        files = st.file_uploader(t(lang, "trainpage.own.folder"), accept_multiple_files="directory",
                                 key="train_own_folder", help=t(lang, "trainpage.own.folder_help"))
        if not files:
            return None, None
        return ("folder", tuple(f.file_id for f in files)), lambda: own_photos.collect_from_paths(
            [(f.name, f.getvalue()) for f in files])
    file = st.file_uploader(t(lang, "trainpage.own.zip"), type=["zip"], key="train_own_zip",
                            help=t(lang, "trainpage.own.folder_help"))
    if file is None:
        return None, None
    return ("zip", file.file_id), lambda: own_photos.collect_from_zip(file.getvalue())


def _add_class() -> None:
    name = own_photos.class_name(st.session_state.get("train_own_new_class", ""))
    classes = st.session_state.setdefault("train_own_classes", [])
    if name and name not in [c["name"] for c in classes]:
        next_id = st.session_state.get("train_own_next_id", 0)
        classes.append({"id": next_id, "name": name})
        st.session_state.train_own_next_id = next_id + 1
    st.session_state.train_own_new_class = ""


def _remove_class(class_id: int) -> None:
    st.session_state.train_own_classes = [c for c in st.session_state.train_own_classes if c["id"] != class_id]


def class_uploaders(lang: str) -> dict[str, list]:
    """Create classes by name (any language) and add photos to each; returns {class name: uploaded files}."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.text_input(t(lang, "trainpage.own.new_class"), key="train_own_new_class", max_chars=own_photos.MAX_NAME_CHARS,
                    placeholder=t(lang, "trainpage.own.new_class_hint"))
    right.button(t(lang, "trainpage.own.add_class"), key="train_own_add", on_click=_add_class)
    files: dict[str, list] = {}
    for cls in st.session_state.get("train_own_classes", []):
        with st.container(border=True):
            name_col, remove_col = st.columns([4, 1], vertical_alignment="center")
            name_col.text(cls["name"])  # plain text: a class name is the user's, never Markdown
            remove_col.button(t(lang, "trainpage.own.remove_class"), key=f"train_own_remove_{cls['id']}",
                              on_click=_remove_class, args=(cls["id"],))
            uploaded = st.file_uploader(t(lang, "trainpage.own.photos"), type=list(EXTENSIONS),
                                        accept_multiple_files=True, key=f"train_own_files_{cls['id']}")
            files[cls["name"]] = list(uploaded or [])
    return files


def photo_summary(lang: str, counts: dict[str, int], skipped: list[SkippedFile]) -> None:
    """Photos per class, and the files left out with the reason for each (all shown as plain text)."""
    st.dataframe({t(lang, "trainpage.own.class"): list(counts), t(lang, "trainpage.own.count"): list(counts.values())},
                 hide_index=True, key="train_own_counts")
    if skipped:
        st.warning(t(lang, "own.skipped", count=len(skipped)))
        with st.expander(t(lang, "trainpage.own.skipped_list")):
            st.dataframe({t(lang, "trainpage.own.file"): [s.name for s in skipped],
                          t(lang, "trainpage.own.reason"): [t(lang, f"own.skip.{s.reason}") for s in skipped]},
                         hide_index=True, key="train_own_skipped")


def enlarge(image: np.ndarray, px: int = GALLERY_PX) -> np.ndarray:
    """(H, W[, C]) uint8 scaled up by a whole factor so a 28-pixel digit is not a blur."""
    k = max(1, px // image.shape[0])
    return image.repeat(k, axis=0).repeat(k, axis=1)


def gallery(lang: str, dataset: Dataset) -> None:
    """A few training examples of each class, the class name beside them."""
    st.markdown(t(lang, "trainpage.data.gallery", train=len(dataset.train_labels), test=len(dataset.test_labels)))
    for label, name in enumerate(dataset.classes[:GALLERY_MAX_CLASSES]):
        picks = np.flatnonzero(dataset.train_labels == label)[:GALLERY_PER_CLASS]
        name_col, images_col = st.columns([1, 6], vertical_alignment="center")
        name_col.text(name)
        if len(picks):
            images_col.image([enlarge(dataset.train_images[i]) for i in picks], width=GALLERY_PX)
    hidden = len(dataset.classes) - GALLERY_MAX_CLASSES
    if hidden > 0:
        st.caption(t(lang, "trainpage.data.more_classes", count=hidden))

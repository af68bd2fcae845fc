"""Tests for imageai.jobs: background trainings, the cap and queue, stopping, and release of a dropped session."""
from __future__ import annotations

import gc
import time
import weakref

import numpy as np
import pytest
import torch

from imageai import jobs, train
from imageai.datasets import Dataset
from imageai.errors import TrainingError
from imageai.jobs import JobHandle, JobState, TrainingManager
from imageai.modelfile import InputSpec

WAIT_S = 30


def tiny_dataset(n: int = 64, size: int = 8, std: float = 0.25) -> Dataset:
    """64 random 8x8 grey pictures in 2 classes; class 1 is brighter, so there is something to learn."""
    rng = np.random.default_rng(0)
    labels = np.arange(n, dtype=np.int64) % 2
    images = rng.integers(0, 128, size=(n, size, size)).astype(np.uint8) + (labels * 100)[:, None, None].astype(
        np.uint8)
    return Dataset(name="tiny", classes=("dark", "light"), train_images=images, train_labels=labels,
                   test_images=images[:16], test_labels=labels[:16],
                   input_spec=InputSpec("resize", 1, size, (0.5,), (std,)))


def tiny_config(**changes) -> train.TrainConfig:
    settings = dict(epochs=2, batch_size=8, learning_rate=1e-2, blocks=1, filters=2, augment=False,
                    val_share=0.25, seed=0)
    return train.TrainConfig(**{**settings, **changes})


def long_config() -> train.TrainConfig:
    """About 4,800 one-picture batches: long enough to still be running when a test looks, stopped early."""
    return tiny_config(epochs=100, batch_size=1)


def wait_for(condition, timeout: float = WAIT_S) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_a_job_trains_in_the_background_and_keeps_curves_and_outcome():
    handle = JobHandle(TrainingManager(2))
    job = handle.start(tiny_dataset(), tiny_config(), name="t", device="cpu")
    job.join(WAIT_S)
    view = job.view()
    assert view.state is JobState.DONE
    assert len(view.batch_points) == 2 * 6  # 48 training images / 8 per batch, 2 epochs
    assert [p["epoch"] for p in view.epoch_points] == [1.0, 2.0]
    assert view.progress.kind == "done"
    assert view.kernels.shape == (2, 1, 3, 3)
    result = job.outcome.result
    assert np.array_equal(view.kernels, result.loaded.model.first_kernels().numpy())
    assert job.outcome.classes == ("dark", "light")
    assert all(m["true"] != m["pred"] for m in job.outcome.mistakes)
    assert job._dataset is None  # the finished job let go of its data


def test_the_first_layer_kernels_are_visible_while_training_runs():
    handle = JobHandle(TrainingManager(2))
    job = handle.start(tiny_dataset(), long_config(), name="t", device="cpu")
    wait_for(lambda: job.view().kernels is not None)
    view = job.view()
    handle.stop()
    job.join(WAIT_S)
    assert view.state is JobState.RUNNING and view.kernels.shape == (2, 1, 3, 3)
    assert not np.array_equal(view.kernels, job.outcome.result.initial_kernels)  # taken after an update


def test_stop_keeps_the_model_and_pressing_it_many_times_is_harmless():
    handle = JobHandle(TrainingManager(2))
    job = handle.start(tiny_dataset(), long_config(), name="t", device="cpu")
    wait_for(lambda: len(job.view().batch_points) >= 3)
    for _ in range(5):
        handle.stop()
    job.join(WAIT_S)
    job.stop()
    assert job.state is JobState.STOPPED
    assert job.outcome.result.stopped
    assert len(job.view().batch_points) < 100 * 48


def test_a_second_training_in_the_same_handle_is_refused_while_one_runs():
    handle = JobHandle(TrainingManager(2))
    first = handle.start(tiny_dataset(), long_config(), name="a", device="cpu")
    with pytest.raises(TrainingError) as refused:
        handle.start(tiny_dataset(), tiny_config(), name="b", device="cpu")
    assert refused.value.key == "train_job_running"
    assert "train_job_running" not in refused.value.message("en")  # the catalog has the message
    handle.stop()
    first.join(WAIT_S)
    second = handle.start(tiny_dataset(), tiny_config(epochs=1), name="b", device="cpu")  # allowed once ended
    second.join(WAIT_S)
    assert second.state is JobState.DONE


def test_beyond_the_cap_a_job_waits_its_turn_and_knows_its_place():
    mgr = TrainingManager(1)
    first_handle, second_handle, third_handle = JobHandle(mgr), JobHandle(mgr), JobHandle(mgr)
    first = first_handle.start(tiny_dataset(), long_config(), name="a", device="cpu")
    second = second_handle.start(tiny_dataset(), long_config(), name="b", device="cpu")
    third = third_handle.start(tiny_dataset(), tiny_config(epochs=1), name="c", device="cpu")
    assert first.state is JobState.RUNNING
    assert (second.view().state, second.view().place, second.view().capacity) == (JobState.QUEUED, 1, 1)
    assert third.place_in_queue() == 2
    assert mgr.counts() == (1, 2)
    first.stop()
    wait_for(lambda: second.state is not JobState.QUEUED)
    assert (second.state, third.place_in_queue()) == (JobState.RUNNING, 1)
    second.stop()
    third.join(WAIT_S)
    assert (first.state, second.state, third.state) == (JobState.STOPPED, JobState.STOPPED, JobState.DONE)
    assert mgr.counts() == (0, 0)


def test_stopping_a_queued_job_cancels_it_without_training():
    mgr = TrainingManager(1)
    first = JobHandle(mgr).start(tiny_dataset(), long_config(), name="a", device="cpu")
    waiting = JobHandle(mgr).start(tiny_dataset(), tiny_config(), name="b", device="cpu")
    waiting.stop()
    waiting.stop()
    assert waiting.state is JobState.CANCELLED and waiting.place_in_queue() is None
    first.stop()
    first.join(WAIT_S)
    assert waiting.outcome is None and waiting.view().batch_points == []
    assert mgr.counts() == (0, 0)


def test_a_diverging_learning_rate_fails_the_job_and_keeps_the_training_error():
    handle = JobHandle(TrainingManager(2))
    job = handle.start(tiny_dataset(std=1e-4), tiny_config(learning_rate=10.0, optimizer="sgd", epochs=20),
                       name="t", device="cpu")
    job.join(WAIT_S)
    assert job.state is JobState.FAILED
    assert isinstance(job.error, TrainingError) and job.error.key == "training_diverged"
    assert job.error.__traceback__ is None  # so the failed run's tensors are not kept alive
    progress = job.view().progress  # None when the very first batch's loss already blew up
    assert job.outcome is None and (progress is None or progress.model is None)  # nothing of the failed run is kept


def test_a_dropped_handle_stops_its_training_and_frees_its_memory():
    models: list[weakref.ref] = []

    def train_and_watch(*args, **kwargs):
        result = train.train(*args, **kwargs)
        models.append(weakref.ref(result.loaded.model))
        return result

    mgr = TrainingManager(2)
    handle = JobHandle(mgr)
    dataset = tiny_dataset()
    dataset_ref = weakref.ref(dataset)
    job = handle.start(dataset, long_config(), name="t", device="cpu", train_fn=train_and_watch)
    del dataset
    job_ref, thread = weakref.ref(job), job._thread
    wait_for(lambda: len(job.view().batch_points) >= 3)
    del job
    del handle  # what Streamlit does to session_state when it drops a session
    gc.collect()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    gc.collect()
    assert job_ref() is None
    assert dataset_ref() is None
    assert len(models) == 1 and models[0]() is None
    assert mgr.counts() == (0, 0)


def test_a_training_whose_owner_is_gone_stops_by_itself_without_garbage_collection(monkeypatch):
    monkeypatch.setattr(jobs, "OWNER_CHECK_S", 0.0)
    owner = {"alive": True}
    handle = JobHandle(TrainingManager(1))
    job = handle.start(tiny_dataset(), long_config(), name="t", device="cpu", owner_alive=lambda: owner["alive"])
    wait_for(lambda: len(job.view().batch_points) >= 3)
    assert job.state is JobState.RUNNING
    owner["alive"] = False  # the session is gone, though `handle` (its session state) is still referenced
    assert job.join(WAIT_S)
    assert job.state is JobState.STOPPED and len(job.view().batch_points) < 4_800
    assert handle.job is job


def test_a_dropped_handle_takes_its_job_out_of_the_queue():
    mgr = TrainingManager(1)
    first = JobHandle(mgr)
    running = first.start(tiny_dataset(), long_config(), name="a", device="cpu")
    queued_handle = JobHandle(mgr)
    queued_ref = weakref.ref(queued_handle.start(tiny_dataset(), tiny_config(), name="b", device="cpu"))
    del queued_handle
    gc.collect()
    assert mgr.counts() == (1, 0)
    assert queued_ref() is None
    running.stop()
    running.join(WAIT_S)


def test_torch_threads_default_to_the_cores_shared_by_the_trainings(monkeypatch):
    monkeypatch.delenv("IMAGEAI_TORCH_THREADS", raising=False)
    monkeypatch.setattr(jobs.os, "sched_getaffinity", lambda _: set(range(8)), raising=False)
    assert jobs.torch_threads_setting(2) == 4
    assert jobs.torch_threads_setting(16) == 1
    monkeypatch.setenv("IMAGEAI_TORCH_THREADS", "1")
    assert jobs.torch_threads_setting(2) == 1
    monkeypatch.setenv("IMAGEAI_MAX_TRAININGS", "3")
    assert jobs.max_trainings_setting() == 3


def test_the_manager_sets_torch_threads_once_and_worker_threads_use_it():
    before = torch.get_num_threads()
    try:
        mgr = TrainingManager(2, torch_threads=1)
        seen = []

        def train_and_count(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return train.train(*args, **kwargs)

        job = JobHandle(mgr).start(tiny_dataset(), tiny_config(epochs=1), name="t", device="cpu",
                                   train_fn=train_and_count)
        job.join(WAIT_S)
        assert mgr.torch_threads == 1 and seen == [1]
    finally:
        torch.set_num_threads(before)


def test_a_long_run_keeps_a_bounded_evenly_spread_curve(monkeypatch):
    monkeypatch.setattr(jobs, "CURVE_POINTS", 20)
    handle = JobHandle(TrainingManager(1))
    job = handle.start(tiny_dataset(), tiny_config(epochs=3, batch_size=1), name="t", device="cpu")
    assert job.join(WAIT_S) and job.state is JobState.DONE
    points = [p["epoch"] for p in job.view().batch_points]  # 3 epochs of 48 one-picture batches: 144 in all
    assert 20 < len(points) <= 40
    gaps = np.diff(points)
    assert (gaps > 0).all() and gaps.max() <= 2 * gaps.min()  # evenly thinned, in order
    assert points[0] <= 2 / 48 and points[-1] >= 3 - 8 / 48  # from the start to near the end

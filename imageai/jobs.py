"""Background trainings: a process-wide manager that caps and queues them, one job per session handle."""
from __future__ import annotations

import ctypes
import dataclasses
import enum
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from imageai.errors import ImageAiError, TrainingError

log = logging.getLogger(__name__)

DEFAULT_MAX_TRAININGS = 2
KERNEL_SNAPSHOT_S = 0.5  # copy the first-layer kernels at most twice a second: the page draws them once a second
OWNER_CHECK_S = 1.0  # ask at most once a second whether the session that started a training is still there
MISTAKES_KEPT = 12  # most confident test mistakes kept for the gallery
CURVE_POINTS = 500  # batch points kept per training, at least (at most twice): the curves draw 400 of them


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # ran every epoch
    STOPPED = "stopped"  # the user stopped it; the model as trained so far is kept
    FAILED = "failed"  # `error` says why (a diverged loss, a bug)
    CANCELLED = "cancelled"  # stopped while still waiting in the queue; there is no model

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


def max_trainings_setting() -> int:
    """How many trainings may run at once: env IMAGEAI_MAX_TRAININGS, default 2."""
    return max(1, int(os.environ.get("IMAGEAI_MAX_TRAININGS", DEFAULT_MAX_TRAININGS)))


def torch_threads_setting(max_trainings: int) -> int:
    """Torch's intra-op threads: env IMAGEAI_TORCH_THREADS, default the cores shared out among the trainings."""
    if "IMAGEAI_TORCH_THREADS" in os.environ:
        return max(1, int(os.environ["IMAGEAI_TORCH_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max_trainings)


@dataclass
class JobView:
    """A consistent copy of a job's live state, safe to read from the page while the worker trains."""

    state: JobState
    place: int | None  # 1-based place in the queue while queued
    capacity: int  # how many trainings the server runs at once
    progress: Any  # the latest imageai.train.Progress, or None before the first batch
    batch_points: list[dict]  # {"epoch": fractional epoch, "loss", "accuracy"} of the recent batches, evenly
                              # thinned in a long run to at most 2 x CURVE_POINTS
    epoch_points: list[dict]  # {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"} per finished epoch
    kernels: np.ndarray | None  # (filters, in_channels, 3, 3) latest first-layer kernels
    error: ImageAiError | None


@dataclass
class JobOutcome:
    """What a finished job keeps once its dataset is dropped: the model and the small things the page shows."""

    result: Any  # imageai.train.TrainResult
    classes: tuple[str, ...]
    mistakes: list[dict] = field(default_factory=list)  # train_figures.confident_mistakes records


class TrainingJob:
    """One training run in a daemon thread; the worker only writes plain data that the page reads by copying."""

    def __init__(self, dataset, config, *, name: str, manager: "TrainingManager",
                 train_fn: Callable | None = None, device: torch.device | None = None,
                 owner_alive: Callable[[], bool] | None = None) -> None:
        self.id = uuid.uuid4().hex  # tells one job from the next in the same session
        self.name = name
        self.config = config
        self._dataset = dataset  # dropped as soon as the training ends
        self._manager = manager
        self._train_fn = train_fn
        self._device = device
        # Garbage collection of a dropped session (see JobHandle) can wait minutes for a full collection; this
        # callable (it must not hold the session) lets the worker notice the owner is gone by itself.
        self._owner_alive = owner_alive
        self._owner_checked_at = time.monotonic()
        self._stop = threading.Event()
        self._ended = threading.Event()  # set once the state is final
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.state = JobState.QUEUED
        self.error: ImageAiError | None = None
        self.outcome: JobOutcome | None = None
        self._progress = None
        self._batch_points: list[dict] = []  # every `_stride`-th batch
        self._stride = 1
        self._epoch_points: list[dict] = []
        self._kernels: np.ndarray | None = None
        self._kernels_at = 0.0

    # --- called from the page (any thread) ---
    def stop(self) -> None:
        """Stop at the next batch (or leave the queue); calling it again, or after the end, does nothing."""
        self._stop.set()
        if self.state is JobState.QUEUED and self._manager.cancel(self):
            with self._lock:
                self.state = JobState.CANCELLED
                self._dataset = None
            self._ended.set()

    def place_in_queue(self) -> int | None:
        return self._manager.place(self)

    def view(self) -> JobView:
        with self._lock:
            place = self.place_in_queue() if self.state is JobState.QUEUED else None
            return JobView(self.state, place, self._manager.max_trainings, self._progress,
                           list(self._batch_points), list(self._epoch_points), self._kernels, self.error)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the job has ended (done, stopped, failed or cancelled); False on timeout."""
        return self._ended.wait(timeout)

    # --- called by the manager and the worker ---
    def _launch(self) -> None:
        with self._lock:
            self.state = JobState.RUNNING
        # The thread holds the job (not the session's handle), so a dropped session can still be noticed.
        self._thread = threading.Thread(target=self._run, name=f"imageai-train-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._train()
        except ImageAiError as err:
            self._fail(err)
        except Exception:  # a bug must end this job cleanly, not the server; the log keeps the traceback
            log.exception("training %s crashed", self.name)
            self._fail(TrainingError("train_job_crashed"))
        finally:
            with self._lock:
                self._dataset = None  # the tensors made from it die with train()'s frames
                if getattr(self._progress, "model", None) is not None:  # a failed run's model is not kept
                    self._progress = dataclasses.replace(self._progress, model=None)
            release_freed_memory()
            self._manager._finished(self)
            self._ended.set()

    def _fail(self, err: ImageAiError) -> None:
        with self._lock:
            self.error = err.with_traceback(None)  # a traceback would keep train()'s frames (and data) alive
            self.state = JobState.FAILED

    def _train(self) -> None:
        from imageai import train, train_figures  # late: importing the manager must stay cheap

        dataset = self._dataset
        train_fn = self._train_fn or train.train
        result = train_fn(dataset, self.config, callback=self._on_progress, stop=self._stop, device=self._device)
        model = result.loaded.model
        mistakes = train_figures.confident_mistakes(result.test_probs, dataset.test_labels, dataset.test_images,
                                                    MISTAKES_KEPT)
        with self._lock:
            self.outcome = JobOutcome(result, tuple(dataset.classes), mistakes)
            self._kernels = model.first_kernels().numpy().copy()
            self.state = JobState.STOPPED if result.stopped else JobState.DONE

    def _on_progress(self, progress) -> None:
        """The training callback: cheap bookkeeping only, so it costs the loop next to nothing."""
        self._check_owner()
        point = {"epoch": progress.done / progress.batches_per_epoch,
                 "loss": progress.recent_loss, "accuracy": progress.recent_acc}
        kernels = self._maybe_kernels(progress)
        with self._lock:
            self._progress = progress
            if progress.kind == "batch" and progress.done % self._stride == 0:
                self._batch_points.append(point)
                if len(self._batch_points) > 2 * CURVE_POINTS:  # a long run: halve the points, and their pace
                    del self._batch_points[1::2]
                    self._stride *= 2
            if progress.kind == "epoch":
                self._epoch_points.append({"epoch": float(progress.epoch), "loss": progress.train_loss,
                                           "accuracy": progress.train_acc, "val_loss": progress.val_loss,
                                           "val_accuracy": progress.val_acc})
            if kernels is not None:
                self._kernels = kernels

    def _check_owner(self) -> None:
        """Stop at the next batch once the session that started this training is gone."""
        now = time.monotonic()
        if self._owner_alive is None or now - self._owner_checked_at < OWNER_CHECK_S:
            return
        self._owner_checked_at = now
        if not self._owner_alive():
            self._stop.set()

    def _maybe_kernels(self, progress) -> np.ndarray | None:
        now = time.monotonic()
        model = getattr(progress, "model", None)
        if model is None or (now - self._kernels_at < KERNEL_SNAPSHOT_S and progress.kind == "batch"):
            return None
        self._kernels_at = now
        return model.first_kernels().cpu().numpy().copy()  # (filters, in_channels, 3, 3)


def release_freed_memory() -> None:
    """Hand the heap a finished training freed back to the OS. glibc keeps freed blocks in its per-thread arenas,
    so without this the server stays ~130 MB bigger after each Digits training (bench/memory.py measures it)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): their allocators return memory themselves
        pass


class TrainingManager:
    """Runs at most `max_trainings` jobs at once; the rest wait in a first-in, first-out queue."""

    def __init__(self, max_trainings: int = DEFAULT_MAX_TRAININGS, torch_threads: int | None = None) -> None:
        self.max_trainings = max(1, max_trainings)
        self._lock = threading.Lock()
        self._running: set[TrainingJob] = set()
        self._queue: deque[TrainingJob] = deque()
        if torch_threads is not None:
            # torch.set_num_threads is process-wide: it is set here once, never per training. The issue asks
            # for one torch thread per training; with the default cap of 2 on the 2-core target machine,
            # cores // cap is exactly 1. On a bigger server the running trainings share out its cores instead
            # of leaving all but `cap` idle; IMAGEAI_TORCH_THREADS=1 forces the strict reading.
            torch.set_num_threads(torch_threads)
        self.torch_threads = torch.get_num_threads()

    def submit(self, job: TrainingJob) -> None:
        with self._lock:
            start = len(self._running) < self.max_trainings
            if start:
                self._running.add(job)
            else:
                self._queue.append(job)
        if start:
            job._launch()

    def cancel(self, job: TrainingJob) -> bool:
        """Take a waiting job out of the queue; False when it has already started."""
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                return True
            return False

    def place(self, job: TrainingJob) -> int | None:
        with self._lock:
            return self._queue.index(job) + 1 if job in self._queue else None

    def counts(self) -> tuple[int, int]:
        """(running, queued)."""
        with self._lock:
            return len(self._running), len(self._queue)

    def _finished(self, job: TrainingJob) -> None:
        with self._lock:
            self._running.discard(job)
            nxt = self._queue.popleft() if self._queue and len(self._running) < self.max_trainings else None
            if nxt is not None:
                self._running.add(nxt)
        if nxt is not None:
            nxt._launch()


_manager: TrainingManager | None = None
_manager_lock = threading.Lock()


def manager() -> TrainingManager:
    """The process-wide manager, made on first use from the environment settings."""
    global _manager
    with _manager_lock:
        if _manager is None:
            cap = max_trainings_setting()
            _manager = TrainingManager(cap, torch_threads_setting(cap))
        return _manager


class JobHandle:
    """A session's hold on its one training. When the handle is garbage-collected (Streamlit dropped the
    session), its job is stopped or taken out of the queue, and with nothing else holding it, freed."""

    def __init__(self, manager_: TrainingManager | None = None) -> None:
        self._manager = manager_
        self.job: TrainingJob | None = None
        self._finalizer: weakref.finalize | None = None

    def start(self, dataset, config, *, name: str, train_fn: Callable | None = None,
              owner_alive: Callable[[], bool] | None = None,
              device: torch.device | None = None) -> TrainingJob:
        """Queue a new training; refused with TrainingError while this handle's last one is still active."""
        if self.job is not None and self.job.state.active:
            raise TrainingError("train_job_running")
        mgr = self._manager or manager()
        job = TrainingJob(dataset, config, name=name, manager=mgr, train_fn=train_fn, device=device,
                          owner_alive=owner_alive)
        if self._finalizer is not None:
            self._finalizer.detach()
        # The finalizer holds the job, never the handle; the worker holds the job, never the handle.
        self._finalizer = weakref.finalize(self, job.stop)
        self.job = job
        mgr.submit(job)
        return job

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()

    def clear(self) -> None:
        """Forget a finished job (and its outcome); an active one is stopped first."""
        self.stop()
        if self._finalizer is not None:
            self._finalizer.detach()
        self.job = self._finalizer = None

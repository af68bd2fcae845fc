"""Shared AppTest helpers for the Train page tests."""
from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest


def wait_until_trained(at: AppTest, timeout: float = 90) -> None:
    """Rerun the page, as its one-second poll does in a browser, until this session's training has ended."""
    end = time.monotonic() + timeout
    while at.session_state["train_handle"].job.state.active:
        assert time.monotonic() < end, "training did not end"
        time.sleep(0.3)
        at.run()
        assert not at.exception
    at.run()

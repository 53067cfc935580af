"""The GIL is released during fits, scans and toys; Ctrl-C (KeyboardInterrupt) stops them;
progress callbacks run in the calling thread only."""
import _thread
import threading
import time

import numpy as np
import pytest

import lepus
from conftest import synthetic_arrays


@pytest.fixture
def large():
    # Big enough that 2000 toys take many seconds, small enough to build instantly.
    return lepus.Model.from_arrays(**synthetic_arrays(nbins=400, nproc=4, nsyst=30, seed=4))


def test_ctrl_c_interrupts_toys(large):
    timer = threading.Timer(0.3, _thread.interrupt_main)  # as SIGINT: KeyboardInterrupt in the main thread
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            large.toys(100000, 1, threads=1)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5.0
    # The module still works afterwards.
    assert large.fit(threads=1).ok


def test_ctrl_c_interrupts_scan(large):
    best = large.fit(threads=1)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            large.scan("sig", np.linspace(0.5, 1.5, 20000), best)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5.0


def test_gil_released_during_toys(large):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        large.toys(40, 2, threads=1)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 5  # the Python thread ran while the toys were computed


def test_progress_in_calling_thread(synthetic):
    calls = []
    main = threading.get_ident()

    def progress(done, total):
        calls.append((done, total, threading.get_ident()))

    result = synthetic.toys(30, 3, threads=2, progress=progress)
    assert result["converged"] > 0
    assert calls and calls[-1][:2] == (30, 30)
    assert all(ident == main for _, _, ident in calls)
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)


def test_progress_exception_stops_and_propagates(large):
    def progress(done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        large.toys(100000, 1, threads=1, progress=progress)


def test_toys_identical_at_any_thread_count(synthetic):
    a = synthetic.toys(8, 11, threads=1)
    b = synthetic.toys(8, 11, threads=2)
    np.testing.assert_array_equal(a["values"], b["values"])

"""Painting without a viewer: voxels per class stroke by stroke, and when autosaves happen."""

from __future__ import annotations

import numpy as np

from napari_cryoli.annotation_session import AutosaveScheduler, ClassCounts, touched_rows


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counts_follow_strokes_recounting_only_touched_slices():
    data = np.zeros((6, 8, 8), np.uint8)
    counts = ClassCounts()
    counts.recount(data)
    assert counts.totals([1, 2]) == {1: 0, 2: 0}
    data[2, :3, :3] = 2
    counts.touch(2, 3)
    data[5, 0, 0] = 1  # changed but not reported: not counted until a full recount
    assert counts.update(data) and counts.totals([1, 2]) == {1: 0, 2: 9}
    assert not counts.update(data)  # nothing touched since
    counts.touch(1, 2)
    counts.touch(4, 6)  # merged into slices 1..5
    assert counts.update(data) and counts.totals([1, 2]) == {1: 1, 2: 9}
    data[:] = 3
    counts.touch()  # the whole volume
    counts.update(data)
    assert counts.totals([2, 3]) == {2: 0, 3: data.size}


def test_counts_recount_a_volume_of_another_shape():
    counts = ClassCounts()
    counts.recount(None)
    assert counts.totals([2]) == {2: 0}
    counts.touch(0, 1)
    counts.update(np.full((3, 2, 2), 2, np.uint8))
    assert counts.totals([2]) == {2: 12}


def test_touched_rows_of_paint_history_atoms():
    atom = ((np.array([3, 5, 4]), np.array([0, 1, 2])), np.zeros(3), 2)
    assert touched_rows([atom], 10) == (3, 6)
    empty = ((np.array([], int), np.array([], int)), np.zeros(0), 2)
    assert touched_rows([empty], 10) == (0, 10)  # nothing known: everything


def test_autosave_waits_for_the_last_stroke():
    clock = Clock()
    saves: AutosaveScheduler[str] = AutosaveScheduler(delay_s=3.0, clock=clock)
    assert saves.wait_s() is None and saves.take() is None
    saves.stroke("labels")
    assert saves.wait_s() == 3.0
    clock.now += 2.0
    saves.stroke("labels")  # a later stroke postpones the save
    clock.now += 2.0
    assert saves.wait_s() == 1.0 and saves.take() is None
    clock.now += 1.0
    assert saves.take() == "labels"
    assert saves.saving and saves.pending is None and saves.wait_s() is None
    saves.finished()
    assert saves.take() is None and saves.wait_s() is None


def test_strokes_during_a_save_are_saved_after_it():
    clock = Clock()
    saves: AutosaveScheduler[str] = AutosaveScheduler(delay_s=3.0, clock=clock)
    saves.save_soon("labels")
    assert saves.take() == "labels"
    saves.stroke("labels")
    clock.now += 5.0
    assert saves.wait_s() is None and saves.take() is None  # one save at a time
    saves.finished()
    assert saves.take() == "labels"  # due while the first one ran: right after it
    saves.finished()
    saves.stroke("other labels")
    saves.save_soon("labels")  # what is pending goes first, without waiting
    assert saves.take() == "other labels"


def test_flush_hands_over_what_is_pending():
    saves: AutosaveScheduler[str] = AutosaveScheduler(clock=Clock())
    assert saves.flush() is None
    saves.stroke("labels")
    assert saves.flush() == "labels"
    assert saves.pending is None and saves.wait_s() is None

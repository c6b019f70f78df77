"""A measurement together with its display overlays, as one job (for the Measure widget)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..jobs import Job, Progress
from .report import MeasureSettings, Report, measure
from .sei import thickness_image, thickness_mesh

#: Marching cubes on more voxels than this uses a coarser step, so the mesh stays displayable.
MESH_VOXELS = 32_000_000


@dataclass(frozen=True)
class MeasuredOverlays:
    """A report plus the dendrite id map, the SEI thickness image (NaN off the surface) and the
    thickness mesh."""

    report: Report
    dendrite_ids: np.ndarray | None
    thickness_image: np.ndarray | None
    mesh: tuple[np.ndarray, np.ndarray, np.ndarray] | None


def measure_with_overlays(
    labels: np.ndarray,
    voxel_size_nm: Sequence[float],
    settings: MeasureSettings = MeasureSettings(),
    stop: threading.Event | None = None,
    notes: Sequence[str] = (),
) -> Job[MeasuredOverlays]:
    """Measure (``notes`` as in :func:`measure`), then build the overlays from the measured
    surface points."""
    report = yield from measure(labels, voxel_size_nm, settings, stop, notes)
    ids = report.dendrite_ids()
    if report.stopped or report.surface is None or len(report.surface) == 0:
        return MeasuredOverlays(report, ids, None, None)
    yield Progress(6, 7, "thickness overlays")
    step = max(1, round((labels.size / MESH_VOXELS) ** (1 / 3)))
    image = thickness_image(labels, report.surface)
    mesh = thickness_mesh(labels, report.surface, voxel_size_nm, step=step)
    yield Progress(7, 7, "done")
    return MeasuredOverlays(report, ids, image, mesh)

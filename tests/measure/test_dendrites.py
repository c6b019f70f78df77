"""Dendrite instances and shape against analytic bodies (lengths, diameters, widths, splits)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.measure import dendrites

from . import shapes

ISO = (1.0, 1.0, 1.0)
ANISO = (1.6, 1.0, 0.8)


def capsule(shape, voxel, a_nm, direction, length_nm, radius_nm) -> np.ndarray:
    """Points within ``radius_nm`` of the segment from ``a_nm`` along ``direction``."""
    d = np.asarray(direction, float)
    d /= np.linalg.norm(d)
    z, y, x = shapes.grid_nm(shape, voxel)
    rel = [z - a_nm[0], y - a_nm[1], x - a_nm[2]]
    t = np.clip(rel[0] * d[0] + rel[1] * d[1] + rel[2] * d[2], 0, length_nm)
    dist = np.sqrt(sum((r - t * di) ** 2 for r, di in zip(rel, d)))
    return dist <= radius_nm


@pytest.mark.parametrize("voxel", [ISO, ANISO], ids=["iso", "aniso"])
def test_straight_capsule_length_and_diameter(voxel):
    shape = tuple(int(140 / h) for h in voxel)
    centre = np.array([(n - 1) * h / 2 for n, h in zip(shape, voxel)])
    d = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])
    mask = capsule(shape, voxel, centre - 45 * d, d, 90.0, 12.0)
    form = dendrites.shape(mask, voxel)
    assert form.length_nm == pytest.approx(90 + 24, rel=0.03)  # tip to tip
    assert form.diameter_nm == pytest.approx(24, rel=0.05)
    assert form.width_xy_nm == pytest.approx(24, rel=0.05)
    assert form.width_z_nm == pytest.approx(24, rel=0.05)
    # The axis runs tip to tip: positions 0 and 1 at the two ends (either way round).
    tip = form.axis.position(centre - 57 * d)
    assert min(tip, 1 - tip) < 0.03
    assert form.axis.position(centre + 57 * d) == pytest.approx(1 - tip, abs=0.03)
    assert form.axis.position(centre) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("voxel", [ISO, ANISO], ids=["iso", "aniso"])
@pytest.mark.parametrize(
    ("direction", "angle"),
    [((0, 1, 0), 0.0), ((0, 0, 1), 90.0), ((0.3, 0.5, 1.0), 63.43), ((0.1, 1, 0.577), 30.0)],
)
def test_angle_to_the_tilt_axis(voxel, direction, angle):
    """The in-plane angle of a capsule's axis to y, whatever its slope in z."""
    shape = tuple(int(140 / h) for h in voxel)
    centre = np.array([(n - 1) * h / 2 for n, h in zip(shape, voxel)])
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    mask = capsule(shape, voxel, centre - 45 * d, d, 90.0, 12.0)
    assert dendrites.shape(mask, voxel).tilt_axis_angle_deg == pytest.approx(angle, abs=2.0)


def test_a_blob_has_no_angle_to_the_tilt_axis():
    voxel = ANISO
    shape = tuple(int(60 / h) for h in voxel)
    mask = shapes.distance_to_point(shape, voxel, [30.2, 29.7, 30.4]) <= 15.0
    assert np.isnan(dendrites.shape(mask, voxel).tilt_axis_angle_deg)


def test_bent_tube_length_follows_the_bend():
    voxel = ISO
    shape = (40, 120, 120)
    centre = np.array([19.7, 59.4, 59.6])
    mask = shapes.distance_to_arc(shape, voxel, centre, 40.0, 1.2) <= 10.0
    form = dendrites.shape(mask, voxel)
    assert form.length_nm == pytest.approx(40 * 2.4 + 20, rel=0.03)
    assert form.diameter_nm == pytest.approx(20, rel=0.05)


def test_cylinder_cut_by_the_border_ends_at_the_border():
    voxel = ANISO
    shape = tuple(int(100 / h) for h in voxel)
    centre = np.array([(n - 1) * h / 2 for n, h in zip(shape, voxel)])
    mask = shapes.distance_to_line(shape, voxel, centre, (0, 0, 1)) <= 18.0
    form = dendrites.shape(mask, voxel)
    assert form.length_nm == pytest.approx(shape[2] * voxel[2], rel=0.02)
    assert form.diameter_nm == pytest.approx(36, rel=0.04)


def test_z_stretched_section_reports_both_widths():
    """An elliptic rod (the missing wedge's elongation along z): z width 1.6x the in-plane one."""
    voxel = ISO
    shape = (80, 60, 100)
    z, y, _ = shapes.grid_nm(shape, voxel)
    mask = np.broadcast_to(((z - 39.6) / 16.0) ** 2 + ((y - 29.7) / 10.0) ** 2 <= 1, shape)
    form = dendrites.shape(np.ascontiguousarray(mask), voxel)
    assert form.width_xy_nm == pytest.approx(20, rel=0.05)
    assert form.width_z_nm == pytest.approx(32, rel=0.05)
    assert form.diameter_nm == pytest.approx(20, rel=0.05)  # twice the inscribed radius


@pytest.mark.parametrize("void_nm", [6.0, 11.0])
def test_a_void_inside_a_dendrite_does_not_split_it(void_nm):
    """A hollow inside a rod (a prediction calling a Cu grain's streaks background) is not a
    neck between two dendrites."""
    voxel = ISO
    shape = (40, 40, 140)
    rod = shapes.distance_to_line(shape, voxel, (19.6, 19.7, 0), (0, 0, 1)) <= 14.0
    void = shapes.distance_to_point(shape, voxel, (19.6, 19.7, 70.2)) <= void_nm
    mask = rod & ~void
    mask[:, :, :10] = mask[:, :, -10:] = False
    assert dendrites.instances(mask, voxel)[1] == 1


def test_touching_dendrites_are_split_and_crossings_are_not():
    voxel = ISO
    shape = (50, 90, 120)
    d1 = shapes.distance_to_line(shape, voxel, (24.6, 30.3, 0), (0, 0, 1))
    d2 = shapes.distance_to_line(shape, voxel, (24.6, 58.3, 0), (0, 0.05, 1))
    side_by_side = np.minimum(d1, d2) <= 14.5  # they touch along a thin seam
    ids, n = dendrites.instances(side_by_side, voxel)
    assert n == 2
    sizes = np.bincount(ids.ravel())[1:]
    assert sizes.min() > 0.4 * sizes.sum()
    d3 = shapes.distance_to_line(shape, voxel, (24.6, 44.3, 60.2), (0, 1, 0.4))
    crossing = (d1 <= 10) | (d3 <= 10)
    _, n = dendrites.instances(crossing, voxel)
    assert n == 1


def test_separate_bodies_are_separate_instances():
    shape = (30, 30, 60)
    mask = np.zeros(shape, dtype=bool)
    mask[5:15, 5:15, 5:20] = True
    mask[5:15, 5:15, 30:50] = True
    ids, n = dendrites.instances(mask, ISO)
    assert n == 2
    assert set(np.unique(ids)) == {0, 1, 2}

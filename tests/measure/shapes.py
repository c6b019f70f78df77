"""Analytic test bodies voxelised at voxel centres: every true thickness, volume and length is known.

A body is a metal core (a set of points within ``radius`` of a centre line: a point, a segment or
a circular arc) wrapped in an SEI shell of known thickness, in a box of given shape and voxel size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI


def grid_nm(shape: Sequence[int], voxel_size_nm: Sequence[float]) -> tuple[np.ndarray, ...]:
    """Physical coordinates (nm) of the voxel centres, broadcastable (z, y, x)."""
    return tuple(
        (np.arange(n) * float(h)).reshape([-1 if a == i else 1 for a in range(3)])
        for i, (n, h) in enumerate(zip(shape, voxel_size_nm))
    )


def distance_to_point(shape, voxel_size_nm, centre_nm) -> np.ndarray:
    z, y, x = grid_nm(shape, voxel_size_nm)
    return np.sqrt((z - centre_nm[0]) ** 2 + (y - centre_nm[1]) ** 2 + (x - centre_nm[2]) ** 2)


def distance_to_line(shape, voxel_size_nm, point_nm, direction) -> np.ndarray:
    """Distance to the infinite line through ``point_nm`` along ``direction`` (z, y, x)."""
    z, y, x = grid_nm(shape, voxel_size_nm)
    u = np.asarray(direction, dtype=float)
    u = u / np.linalg.norm(u)
    dz, dy, dx = z - point_nm[0], y - point_nm[1], x - point_nm[2]
    along = dz * u[0] + dy * u[1] + dx * u[2]
    return np.sqrt(np.maximum(dz**2 + dy**2 + dx**2 - along**2, 0.0))


def distance_to_arc(shape, voxel_size_nm, centre_nm, bend_radius_nm, half_angle_rad) -> np.ndarray:
    """Distance to a circular arc in the plane z = centre_z, centred on ``centre_nm``, spanning
    angles -half_angle..half_angle around the +x direction; beyond its ends, the distance to the
    nearer end point (rounded caps)."""
    z, y, x = grid_nm(shape, voxel_size_nm)
    dz, dy, dx = z - centre_nm[0], y - centre_nm[1], x - centre_nm[2]
    angle = np.arctan2(dy, dx)
    rho = np.sqrt(dy**2 + dx**2)
    on_arc = np.abs(angle) <= half_angle_rad
    d_arc = np.sqrt(dz**2 + (rho - bend_radius_nm) ** 2)
    ends = []
    for a in (-half_angle_rad, half_angle_rad):
        ey, ex = bend_radius_nm * np.sin(a), bend_radius_nm * np.cos(a)
        ends.append(np.sqrt(dz**2 + (dy - ey) ** 2 + (dx - ex) ** 2))
    return np.where(on_arc, d_arc, np.minimum(*ends))


def shelled(
    distance: np.ndarray,
    radius_nm: float,
    shell_nm: float | np.ndarray,
    phase: int | np.ndarray = LI,
) -> np.ndarray:
    """Labels: ``phase`` where distance <= radius, SEI out to radius + shell, background beyond."""
    labels = np.full(distance.shape, BACKGROUND, dtype=np.uint8)
    labels[distance <= radius_nm + shell_nm] = SEI
    core = distance <= radius_nm
    labels[core] = (np.broadcast_to(phase, distance.shape))[core]
    return labels


def sphere(shape, voxel_size_nm, radius_nm, shell_nm, centre_nm=None, phase=LI) -> np.ndarray:
    centre = _centre(shape, voxel_size_nm) if centre_nm is None else centre_nm
    return shelled(distance_to_point(shape, voxel_size_nm, centre), radius_nm, shell_nm, phase)


def _centre(shape, voxel_size_nm) -> np.ndarray:
    return np.array([(n - 1) * h / 2 for n, h in zip(shape, voxel_size_nm)])


def half_and_half_sphere(
    shape, voxel_size_nm, radius_nm, shell_li_nm, shell_lih_nm, centre_nm=None
):
    """A sphere, Li where x < centre (shell ``shell_li_nm``), LiH where x >= centre (its own shell).

    The halves meet in a plane through the centre, so every radial normal stays in its half and
    the thickness along it is that half's shell exactly."""
    centre = _centre(shape, voxel_size_nm) if centre_nm is None else np.asarray(centre_nm)
    x = grid_nm(shape, voxel_size_nm)[2]
    lih_side = np.broadcast_to(x >= centre[2], shape)
    d = distance_to_point(shape, voxel_size_nm, centre)
    shell = np.where(lih_side, shell_lih_nm, shell_li_nm)
    phase = np.where(lih_side, LIH, LI).astype(np.uint8)
    return shelled(d, radius_nm, shell, phase)


def add_ball(labels, voxel_size_nm, centre_nm, radius_nm, label=CU) -> np.ndarray:
    """Paint a ball of ``label`` into ``labels`` (in place) and return it."""
    labels[distance_to_point(labels.shape, voxel_size_nm, centre_nm) <= radius_nm] = label
    return labels

"""SEI thickness against analytic shells: spheres, straight and bent cylinders, two-phase bodies,
anisotropic voxels and shapes cut by the volume border. The bar: bias within a quarter voxel."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.classes import BACKGROUND, CU, LI, LIH, SEI
from napari_cryoli.measure.sei import sei_thickness, thickness_image, thickness_mesh

from . import shapes

ISO = (1.0, 1.0, 1.0)
ANISO = (1.6, 1.0, 0.8)
COARSE = (2.0, 2.0, 2.0)


def box_for(extent_nm: float, voxel: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(np.ceil(extent_nm / h)) for h in voxel)


def off_grid_centre(shape, voxel, seed: int) -> np.ndarray:
    """The box centre moved by a fraction of a voxel, so no surface lines up with the grid."""
    rng = np.random.default_rng(seed)
    return np.array([(n - 1) * h / 2 for n, h in zip(shape, voxel)]) + rng.uniform(-0.5, 0.5, 3)


def bias(labels, voxel, truth) -> tuple[float, int]:
    st = sei_thickness(labels, voxel)
    t = st.thickness_nm[st.covered & st.measured]
    assert t.size > 100
    return float(np.mean(t) - truth), int(t.size)


SPHERE_CASES = [
    (voxel, shell)
    for voxel in (ISO, ANISO, COARSE)
    for shell in (4.0, 10.0, 20.0, 60.0)
    if not (shell == 60.0 and voxel == ANISO)  # the largest box; iso and coarse cover it
]


@pytest.mark.parametrize(("voxel", "shell"), SPHERE_CASES)
def test_sphere_shell_is_unbiased(voxel, shell):
    radius = 24.0
    shape = box_for(2 * (radius + shell) + 8, voxel)
    labels = shapes.sphere(shape, voxel, radius, shell, off_grid_centre(shape, voxel, 1))
    b, _ = bias(labels, voxel, shell)
    assert abs(b) < min(voxel) / 4, f"bias {b:+.3f} nm"


CYLINDER_CASES = [
    (ISO, 4.0),
    (ISO, 20.0),
    (ANISO, 4.0),
    (ANISO, 20.0),
    (COARSE, 10.0),
    (COARSE, 60.0),
]


@pytest.mark.parametrize(("voxel", "shell"), CYLINDER_CASES)
def test_oblique_cylinder_cut_by_the_border_is_unbiased(voxel, shell):
    """A cylinder crossing the whole box at an odd angle: its cut ends are no surface."""
    radius = 15.0
    shape = box_for(2 * (radius + shell) + 30, voxel)
    centre = off_grid_centre(shape, voxel, 2)
    direction = np.array([0.2, 0.35, 1.0])
    labels = shapes.shelled(
        shapes.distance_to_line(shape, voxel, centre, direction), radius, shell
    )
    st = sei_thickness(labels, voxel)
    ok = st.covered & st.measured
    b = float(np.mean(st.thickness_nm[ok]) - shell)
    assert abs(b) < min(voxel) / 4, f"bias {b:+.3f} nm"
    # Normals are radial: none points along the axis (a border face would).
    u = direction / np.linalg.norm(direction)
    along = np.abs(st.normals @ u)
    assert np.percentile(along, 99.9) < 0.2


@pytest.mark.parametrize(
    ("voxel", "shell"), [(ISO, 4.0), (ISO, 10.0), (ISO, 20.0), (COARSE, 60.0)]
)
def test_bent_cylinder_is_unbiased(voxel, shell):
    """A tube bent through 140 degrees with rounded ends. The bend radius exceeds tube radius
    plus shell, so every normal meets the shell's outer surface after exactly one shell."""
    tube = 8.0
    bend = max(32.0, tube + shell + 10.0)
    reach = bend + tube + shell + 4
    shape = (
        int(np.ceil(2 * (tube + shell + 4) / voxel[0])),
        int(np.ceil(2 * reach / voxel[1])),
        int(np.ceil(2 * reach / voxel[2])),
    )
    centre = off_grid_centre(shape, voxel, 3)
    d = shapes.distance_to_arc(shape, voxel, centre, bend, np.radians(70))
    labels = shapes.shelled(d, tube, shell)
    b, n = bias(labels, voxel, shell)
    assert abs(b) < min(voxel) / 4, f"bias {b:+.3f} nm over {n} points"


@pytest.mark.parametrize("voxel", [ISO, ANISO], ids=["iso", "aniso"])
def test_half_li_half_lih_gets_each_shell(voxel):
    """Li with a 6 nm shell, LiH with 14 nm: each point reports its own phase's shell."""
    shape = box_for(2 * (25 + 14) + 8, voxel)
    labels = shapes.half_and_half_sphere(
        shape, voxel, 25.0, 6.0, 14.0, off_grid_centre(shape, voxel, 4)
    )
    st = sei_thickness(labels, voxel)
    for phase, truth in ((LI, 6.0), (LIH, 14.0)):
        t = st.thickness_nm[(st.phase == phase) & st.measured]
        assert t.size > 500
        assert abs(t.mean() - truth) < min(voxel) / 4
        assert abs(np.median(t) - truth) < min(voxel) / 4


def test_metal_surface_area_and_tilt():
    voxel = ANISO
    radius = 20.0
    shape = box_for(2 * radius + 20, voxel)
    st = sei_thickness(
        shapes.sphere(shape, voxel, radius, 5.0, off_grid_centre(shape, voxel, 5)), voxel
    )
    # The marching interface lies on the 0.5 level, radius + 0 on average: area 4 pi r^2.
    assert st.area_nm2.sum() == pytest.approx(4 * np.pi * radius**2, rel=0.03)
    # On a sphere, the share of area with tilt under 60 degrees is sin(60) = 0.866.
    share = st.area_nm2[st.normal_tilt_deg <= 60].sum() / st.area_nm2.sum()
    assert share == pytest.approx(np.sin(np.radians(60)), abs=0.02)
    r = np.linalg.norm(st.points_nm - off_grid_centre(shape, voxel, 5), axis=1)
    assert abs(r.mean() - radius) < 0.1


def test_trusted_faces_are_those_a_tilt_series_sees_edge_on():
    """Tilting about y to ±60° sees a face edge-on when atan(|n_z| / |n_x|) <= 60°: on a
    sphere that is 60/90 of the area (the normals' angle about y is uniform), on a rod along y
    the same, on a rod along x (across the tilt axis) only its sides."""
    voxel = ANISO
    radius = 20.0
    shape = box_for(2 * radius + 20, voxel)
    sphere = sei_thickness(
        shapes.sphere(shape, voxel, radius, 5.0, off_grid_centre(shape, voxel, 5)), voxel
    )
    assert sphere.area_nm2[sphere.trusted(60)].sum() / sphere.area_nm2.sum() == pytest.approx(
        2 / 3, abs=0.02)
    centre = off_grid_centre(shape, voxel, 7)
    for axis, share in (((0, 1, 0), 2 / 3), ((0, 0, 1), 0.0)):
        rod = sei_thickness(
            shapes.shelled(shapes.distance_to_line(shape, voxel, centre, axis), radius, 5.0), voxel
        )
        trusted = rod.area_nm2[rod.trusted(60)].sum() / rod.area_nm2.sum()
        assert trusted == pytest.approx(share, abs=0.04), axis
        # The normal's angle to the x-y plane (version 1 reports) trusts 2/3 either way round.
        old_rule = rod.area_nm2[rod.normal_tilt_deg <= 60].sum() / rod.area_nm2.sum()
        assert old_rule == pytest.approx(2 / 3, abs=0.05)


def test_sphere_cut_by_a_face_keeps_its_cut_open():
    """A half sphere on the x = 0 face: the cut disc is not surface, the dome is."""
    voxel = ISO
    shape = (70, 70, 40)
    centre = np.array([34.3, 34.6, 0.2])
    labels = shapes.sphere(shape, voxel, 22.0, 8.0, centre)
    st = sei_thickness(labels, voxel)
    assert st.area_nm2.sum() == pytest.approx(2 * np.pi * 22.0**2, rel=0.04)
    assert abs(st.thickness_nm[st.measured].mean() - 8.0) < 0.25
    assert not np.any(st.normals[:, 2] < -0.5)  # nothing faces the border at x = 0


def test_bare_metal_and_unknown_classes():
    """Metal without SEI has surface but no thickness; ids 0 and 6+ count as outside."""
    voxel = ISO
    shape = (40, 40, 40)
    labels = shapes.sphere(shape, voxel, 10.0, 4.0)
    labels[:, :, :20][labels[:, :, :20] == SEI] = 7  # user class where SEI was on one half
    labels[labels == BACKGROUND] = 0
    st = sei_thickness(labels, voxel)
    x = st.points_zyx[:, 2]
    assert not st.covered[x < 17].any()
    assert np.all(np.isnan(st.thickness_nm[~st.covered]))
    assert abs(np.nanmean(st.thickness_nm[x > 22]) - 4.0) < 0.25


def test_thickness_passes_through_cu_to_the_outside():
    """A Cu grain inside the SEI is part of the layer (the ray stops only at the outside)."""
    voxel = ISO
    shape = (50, 50, 50)
    c = off_grid_centre(shape, voxel, 6)
    labels = shapes.sphere(shape, voxel, 12.0, 8.0, c)
    clean = sei_thickness(labels, voxel)
    shapes.add_ball(labels, voxel, c + [0, 0, 16.0], 2.5, CU)
    st = sei_thickness(labels, voxel)
    assert np.nanmean(st.thickness_nm) == pytest.approx(np.nanmean(clean.thickness_nm), abs=0.05)


def test_empty_inputs_give_empty_surfaces():
    st = sei_thickness(np.full((10, 10, 10), SEI, dtype=np.uint8), 1.0)
    assert len(st) == 0 and st.notes
    st = sei_thickness(np.full((10, 10, 10), LI, dtype=np.uint8), 1.0)
    assert len(st) == 0  # all metal, cut by the border everywhere: no surface


def test_thickness_image_and_mesh():
    voxel = (1.5, 1.0, 1.0)
    shape = box_for(50, voxel)
    labels = shapes.sphere(shape, voxel, 12.0, 6.0, off_grid_centre(shape, voxel, 7))
    st = sei_thickness(labels, voxel)
    img = thickness_image(labels, st)
    assert img.shape == labels.shape and img.dtype == np.float32
    assert np.isfinite(img).sum() == st.measured.sum()
    assert np.nanmean(img) == pytest.approx(6.0, abs=0.25)
    verts, faces, values = thickness_mesh(labels, st, voxel)
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and len(values) == len(verts)
    assert np.all(np.isfinite(values))
    assert np.median(values) == pytest.approx(6.0, abs=0.3)
    # Vertices are in voxel units on the metal surface: radius 12 nm from the centre in nm.
    r = np.linalg.norm(verts * voxel - off_grid_centre(shape, voxel, 7), axis=1)
    assert abs(r.mean() - 12.0) < 0.5


def test_normal_angles_are_complementary():
    st = sei_thickness(shapes.sphere((30, 30, 30), ISO, 8.0, 3.0), ISO)
    assert np.allclose(st.normal_angle_to_z_deg + st.normal_tilt_deg, 90.0)
    top = st.normals[:, 0] > 0.99  # the pole faces along z
    assert np.all(st.normal_angle_to_z_deg[top] < 10)

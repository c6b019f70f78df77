"""Meshes in Å on the map's grid, validated against the label surface, and their files."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.classes import CU, LI, LIH, SEI
from napari_cryoli.cli import main
from napari_cryoli.dataset.mesh import MeshConfig, class_mesh, mesh_labels, write_meshes
from napari_cryoli.io import write_mrc
from napari_cryoli.jobs import run_job
from napari_cryoli.measure.report import measure

H = (2.0, 1.5, 1.25)  # anisotropic voxels (z, y, x) in nm
ORIGIN = (30.0, -12.0, 7.5)  # nm


def face_distance(vertices_A: np.ndarray, mask: np.ndarray, voxel_size_nm=H,
                  origin_nm=ORIGIN) -> np.ndarray:
    """Distance (in voxels) of each vertex to the label surface: the voxel faces between a voxel
    of ``mask`` and one outside it (or the volume's outside). Computed here, not by the code
    under test: each face is a unit square; the nearest of the 16 nearest face centres wins.
    (``benchmarks/mesh_speed.py`` measures its meshes with it too.)"""
    from scipy.spatial import cKDTree

    padded = np.pad(mask, 1)
    centres, normals = [], []
    for axis in range(3):
        a = np.take(padded, range(padded.shape[axis] - 1), axis=axis)
        b = np.take(padded, range(1, padded.shape[axis]), axis=axis)
        idx = np.argwhere(a != b).astype(float)
        idx[:, axis] += 0.5
        centres.append(idx - 1)
        normals.append(np.full(len(idx), axis))
    centres, normals = np.concatenate(centres), np.concatenate(normals)
    zyx = (vertices_A[:, ::-1] / 10.0 - np.asarray(origin_nm)) / np.asarray(voxel_size_nm)
    _, near = cKDTree(centres).query(zyx, k=16)
    d = zyx[:, None, :] - centres[near]
    axis = normals[near]
    along = np.take_along_axis(np.abs(d), axis[..., None], axis=2)[..., 0]
    across = np.clip(np.abs(d) - 0.5, 0, None)
    np.put_along_axis(across, axis[..., None], 0.0, axis=2)
    return np.sqrt(along**2 + (across**2).sum(axis=2)).min(axis=1)


def _shapes() -> np.ndarray:
    """A Li rod with a LiH half, an SEI shell, a Cu sphere; the rod is cut by the volume border."""
    z, y, x = np.indices((40, 48, 56))
    p = np.stack([z * H[0], y * H[1], x * H[2]])
    labels = np.ones((40, 48, 56), np.uint8)
    r = np.hypot(p[0] - 40, p[2] - 35)
    labels[r < 20] = SEI
    labels[r < 14] = LI
    labels[(r < 14) & (p[1] > 36)] = LIH
    labels[np.linalg.norm(p - np.array([60, 20, 60])[:, None, None, None], axis=0) < 6] = CU
    return labels


def test_vertices_lie_on_the_label_surface_in_angstrom_with_origin():
    labels = _shapes()
    for class_id in (LI, LIH, SEI, CU):
        mesh = class_mesh(labels, class_id, H, ORIGIN, MeshConfig(target_faces=5000))
        d = face_distance(np.asarray(mesh.vertices), labels == class_id)
        assert d.max() <= 0.5, (class_id, d.max())
        assert mesh.is_watertight  # closed where the border cut the shape
        assert len(mesh.faces) <= 5000
    # Without smoothing the vertices are the marching-cubes ones: on the faces exactly.
    raw = class_mesh(labels, LI, H, ORIGIN, MeshConfig(smooth_iterations=0, target_faces=10**7))
    assert face_distance(np.asarray(raw.vertices), labels == LI).max() < 1e-6


def test_sphere_radius_in_angstrom():
    """An analytic check of units and origin: a voxelised sphere's mesh has the sphere's radius."""
    z, y, x = np.indices((48, 64, 80))
    centre = np.array([47.0, 48.0, 50.0])  # nm
    dist = np.sqrt((z * H[0] - centre[0]) ** 2 + (y * H[1] - centre[1]) ** 2
                   + (x * H[2] - centre[2]) ** 2)
    labels = np.where(dist < 30.0, LI, 1).astype(np.uint8)
    mesh = class_mesh(labels, LI, H, ORIGIN, MeshConfig(target_faces=20000))
    centre_A = (centre + np.asarray(ORIGIN))[::-1] * 10
    radii = np.linalg.norm(np.asarray(mesh.vertices) - centre_A, axis=1)
    assert abs(np.median(radii) - 300.0) < 0.25 * 10 * min(H)
    assert np.abs(radii - 300.0).max() < 0.5 * 10 * max(H)


def test_glb_keeps_thickness_colours(tmp_path):
    import trimesh

    labels = _shapes()
    report = run_job(measure(labels, H))
    meshes = run_job(mesh_labels(labels, H, ORIGIN, MeshConfig(target_faces=4000),
                                 surface=report.surface))
    assert [m.name for m in meshes.meshes] == ["Li", "LiH", "Cu", "SEI"]
    li = meshes.meshes[0]
    t = li.thickness_nm[np.isfinite(li.thickness_nm)]
    assert t.size > 0.5 * len(li.vertices_A)  # the rod's side; its inner LiH face has none
    assert abs(np.median(t) - 6.0) < 0.25 * max(H)  # the designed 20 - 14 nm shell
    path = write_meshes(meshes, tmp_path / "m.glb")[0]
    scene = trimesh.load(path, process=False)
    assert sorted(scene.geometry) == ["Cu", "Li", "LiH", "SEI"]
    for m in meshes.meshes:
        back = scene.geometry[m.name]
        assert np.allclose(back.vertices, m.vertices_A, atol=1e-3)
        assert np.array_equal(np.asarray(back.visual.vertex_colors), m.vertex_colors)
        if m.thickness_nm is not None:
            stored = np.asarray(back.vertex_attributes["_thickness_nm"]).ravel()
            assert np.allclose(stored, np.nan_to_num(m.thickness_nm, nan=-1.0), atol=1e-4)
    # Thicker SEI is a different colour: the colours follow the thickness, not the class.
    thick = np.argmax(np.nan_to_num(li.thickness_nm, nan=-1))
    thin = np.nanargmin(li.thickness_nm)
    assert not np.array_equal(li.vertex_colors[thick], li.vertex_colors[thin])


def test_cli_mesh_writes_files_and_chimerax_script(tmp_path, capsys):
    import trimesh

    seg = tmp_path / "rod.seg.mrc"
    write_mrc(seg, _shapes(), voxel_size_nm=H, origin_nm=ORIGIN, labels=True)
    report = tmp_path / "rod.report.json"
    assert main(["measure", str(seg), "--out", str(report)]) == 0
    assert main(["mesh", str(seg), "--out", str(tmp_path / "m.glb"), "--report", str(report),
                 "--faces", "3000"]) == 0
    script = (tmp_path / "m.cxc").read_text()
    assert "open rod.seg.mrc format mrc" in script and "open m.glb" in script
    assert main(["mesh", str(seg), "--out", str(tmp_path / "m.stl"), "--classes", "Li", "5",
                 "--no-thickness"]) == 0
    script = (tmp_path / "m.cxc").read_text()
    assert "open m_Li.stl" in script and "open m_SEI.stl" in script
    assert "color #2 #408cff" in script and "transparency #3 70" in script
    tomogram = tmp_path / "maps" / "rod.mrc"
    tomogram.parent.mkdir()
    write_mrc(tomogram, _shapes().astype(np.float32), voxel_size_nm=H, origin_nm=ORIGIN)
    assert main(["mesh", str(seg), "--out", str(tmp_path / "m.stl"), "--classes", "Li",
                 "--no-thickness", "--map", str(tomogram)]) == 0
    script = (tmp_path / "m.cxc").read_text()
    assert "open maps/rod.mrc format mrc\nvolume #1 style image\nopen m_Li.stl" in script
    stl = trimesh.load(tmp_path / "m_Li.stl")
    assert stl.is_watertight
    assert main(["mesh", str(seg), "--out", str(tmp_path / "m.obj"), "--classes", "Cu"]) == 0
    assert trimesh.load(tmp_path / "m_Cu.obj").bounds[0][0] > ORIGIN[2] * 10
    capsys.readouterr()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "{tmp}/m.ply"], "write meshes as .glb, .obj or .stl"),
        (["--out", "{tmp}/m.glb", "--classes", "carbon"], "unknown class 'carbon'"),
        (["--out", "{tmp}/m.glb", "--classes", "3"], "none of the classes"),
        (["--out", "{tmp}/m.glb", "--report", "{tmp}/other.json"], "report of another"),
        (["--out", "{tmp}/none/m.glb"], "does not exist"),
    ],
)
def test_cli_mesh_refuses_bad_input(extra, message, tmp_path, capsys):
    seg = tmp_path / "seg.mrc"
    write_mrc(seg, _shapes()[:, :, :30] * (_shapes()[:, :, :30] != LIH), voxel_size_nm=H,
              labels=True)
    other = tmp_path / "other.mrc"
    write_mrc(other, _shapes(), voxel_size_nm=H, labels=True)
    main(["measure", str(other), "--out", str(tmp_path / "other.json")])
    capsys.readouterr()
    assert main(["mesh", str(seg), *(e.format(tmp=tmp_path) for e in extra)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err

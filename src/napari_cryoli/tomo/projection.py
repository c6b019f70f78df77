"""Forward projection of a volume around the tilt axis (y): the tilt series a microscope records."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..devices import resolve_device
from ..errors import InputError
from . import geometry


def project(
    volume: np.ndarray,
    angles_deg: Sequence[float],
    *,
    n_det: int | None = None,
    device: str = "auto",
) -> np.ndarray:
    """Line integrals of ``volume`` (z, y, x) at each tilt angle: a tilt series (view, y, x).

    Values are integrals in voxel lengths (a slab of value 1 and thickness t voxels seen at 0°
    gives t). ``n_det`` is the width of the projections (default: the volume's x size); a wider
    detector sees rays that pass beside the volume. The geometry is the one
    :func:`~napari_cryoli.tomo.wbp.reconstruct` inverts (IMOD's, see ``geometry``).
    """
    import torch

    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise InputError(f"a volume to project must be 3D (z, y, x), not {vol.ndim}D")
    angles = geometry.as_angles(angles_deg)
    nz, ny, nx = vol.shape
    n_det = nx if n_det is None else int(n_det)
    dev = torch.device(resolve_device(device))
    # Slices perpendicular to the tilt axis become the columns: rows are (z, x) voxels.
    columns = torch.from_numpy(
        np.ascontiguousarray(vol.transpose(0, 2, 1), dtype=np.float32).reshape(nz * nx, ny)
    ).to(dev)
    out = np.empty((len(angles), ny, n_det), dtype=np.float32)
    for views in geometry.projection_view_blocks(nz, nx, n_det, len(angles)):
        a = geometry.to_torch_csr(geometry.projection_matrix(nz, nx, n_det, angles[views]), dev)
        sino = (a @ columns).reshape(-1, n_det, ny)
        out[views] = sino.permute(0, 2, 1).cpu().numpy()
    return out

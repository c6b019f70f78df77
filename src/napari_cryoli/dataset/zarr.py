"""OME-Zarr copies of volumes (predictions, tomograms) that napari opens lazily.

The volume is read chunk by chunk (a memory-mapped MRC stays on disk) and written with a
multiscale pyramid by ome-zarr, so a tomogram larger than memory goes through in bounded memory;
the voxel size (nm) and origin travel as the OME-NGFF scale and translation. The store is built
in a hidden sibling folder and renamed into place: a reader never sees half of it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError

#: Chunk of the stored arrays (z, y, x): 16 MiB of uint8, 64 MiB of float32.
CHUNKS = (64, 256, 256)

#: Pyramid levels are added while the smallest side stays at least this many voxels.
MIN_LEVEL_SIDE = 32


def pyramid_factors(shape: Sequence[int]) -> list[dict[str, int]]:
    """Downsampling factors 2, 4, 8, ... in z, y and x while every side keeps MIN_LEVEL_SIDE."""
    factors = []
    f = 2
    while min(shape) // f >= MIN_LEVEL_SIDE and f <= 16:
        factors.append({"z": f, "y": f, "x": f})
        f *= 2
    return factors


def write_ome_zarr(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    voxel_size_nm: Sequence[float],
    origin_nm: Sequence[float] | None = None,
    labels: bool = False,
    name: str | None = None,
) -> Path:
    """Write ``data`` (z, y, x) as an OME-Zarr image at ``path`` (a ``.ome.zarr`` folder).

    Label volumes are downsampled by nearest neighbour (ids stay ids), images by local mean.
    An existing store at ``path`` is replaced only once the new one is complete.
    """
    import dask
    import dask.array as da

    try:
        import zarr
        from ome_zarr.writer import write_image
    except ImportError:
        raise InputError("OME-Zarr output needs the ome-zarr package (Python 3.11 or later): "
                         "pip install ome-zarr") from None
    path = Path(path)
    if data.ndim != 3:
        raise FileFormatError(f"OME-Zarr output takes a 3D volume, not shape {data.shape}")
    h = [float(v) for v in voxel_size_nm]
    origin = [0.0, 0.0, 0.0] if origin_nm is None else [float(v) for v in origin_nm]
    factors = pyramid_factors(data.shape)
    chunks = tuple(min(c, n) for c, n in zip(CHUNKS, data.shape))
    # Not the array itself: dask would copy a memory map whole (to tokenize it); name=False
    # skips hashing the data.
    lazy = da.from_array(_Slabs(data), chunks=chunks, name=False,
                         meta=np.empty((0, 0, 0), data.dtype))
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        group = zarr.open_group(str(tmp), mode="w")
        with dask.config.set(scheduler="synchronous"):  # inside a batch task, too: no nesting
            write_image(
                lazy, group, scale_factors=factors, method="nearest" if labels else "local_mean",
                axes="zyx", scale=dict(zip("zyx", h)),
                axes_units=dict.fromkeys("zyx", "nanometer"),
                storage_options={"chunks": chunks}, name=name or path.name.split(".")[0],
            )
        _shift_by_origin(group, origin)
        _replace_folder(tmp, path)
    except OSError as e:
        raise FileFormatError(f"could not write {path}: {e.strerror or e}") from None
    finally:
        with suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return path


class _Slabs:
    """An array-like view of ``data`` that dask reads block by block (each block a copy)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    def __getitem__(self, key) -> np.ndarray:
        return np.array(self.data[key])


def _shift_by_origin(group, origin: list[float]) -> None:
    """Place the whole pyramid at the volume's origin (nm): a translation of the multiscale
    itself, after each level's own scale and half-voxel shift (OME-NGFF 0.4 and later)."""
    attrs = group.attrs.asdict()
    ome = attrs.get("ome", attrs)
    ome["multiscales"][0]["coordinateTransformations"] = [
        {"type": "translation", "translation": list(origin)}]
    group.attrs.update(attrs)


def _replace_folder(new: Path, path: Path) -> None:
    """Put the folder ``new`` at ``path``; an old store there goes only once ``new`` is in."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{secrets.token_hex(4)}.old")
        os.replace(path, old)
    os.replace(new, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def is_ome_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an OME-Zarr store (``.zarr``, e.g. ``seg.ome.zarr``)."""
    return Path(path).suffix.lower() == ".zarr"


@contextmanager
def staged_as_mrc(out: str | os.PathLike) -> Iterator[Path]:
    """Where to stream a segmentation that is to end up at ``out``.

    For an MRC ``out``, ``out`` itself. For an OME-Zarr ``out``, a hidden MRC next to it: the
    block streams into it (in bounded memory, as for any MRC), then it is copied chunk by chunk
    into the store (voxel size and origin from its header) and removed. A block that wrote
    nothing (stopped) leaves nothing; one that raised leaves no store and no MRC.
    """
    out = Path(out)
    if not is_ome_zarr(out):
        yield out
        return
    import importlib.util

    if importlib.util.find_spec("ome_zarr") is None:
        raise InputError("OME-Zarr output needs the ome-zarr package (Python 3.11 or later): "
                         "pip install ome-zarr")
    staged = out.with_name(f".{out.name}.{secrets.token_hex(4)}.mrc")
    try:
        yield staged
        if staged.exists():
            from ..io import read_mrc

            volume = read_mrc(staged)
            write_ome_zarr(out, volume.data, voxel_size_nm=volume.voxel_size_nm,
                           origin_nm=volume.origin_nm, labels=True)
            del volume
    finally:
        with suppress(FileNotFoundError):
            staged.unlink()


def zarr_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """Shape of the full-resolution array of an OME-Zarr image (``FileFormatError`` if none)."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        datasets = group.attrs.asdict().get("ome", group.attrs.asdict())["multiscales"][0][
            "datasets"]
        return tuple(group[datasets[0]["path"]].shape)
    except (OSError, KeyError, IndexError, ValueError, TypeError) as e:
        raise FileFormatError(f"{path} is not an OME-Zarr image ({e})") from None
    except Exception as e:  # noqa: BLE001 - zarr's own errors for a missing or damaged store
        raise FileFormatError(f"{path} is not an OME-Zarr image ({type(e).__name__})") from None


def read_ome_zarr(path: str | os.PathLike) -> tuple[list, dict]:
    """The pyramid of an OME-Zarr image as dask arrays (lazy) and its scale and translation (nm)
    at full resolution."""
    import dask.array as da
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = group.attrs.asdict()
        multiscales = attrs.get("ome", attrs)["multiscales"][0]
    except Exception as e:  # noqa: BLE001 - any failure: not an OME-Zarr image
        raise FileFormatError(f"{path} is not an OME-Zarr image ({type(e).__name__})") from None
    levels = [da.from_zarr(group[d["path"]]) for d in multiscales["datasets"]]
    scale, shift = np.ones(3), np.zeros(3)
    for t in [*multiscales["datasets"][0].get("coordinateTransformations", []),
              *multiscales.get("coordinateTransformations", [])]:
        if t["type"] == "scale":
            scale, shift = scale * t["scale"], shift * t["scale"]
        elif t["type"] == "translation":
            shift = shift + t["translation"]
    return levels, {"scale": scale.tolist(), "translate": shift.tolist()}

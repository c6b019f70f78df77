"""Autosaved annotations: sidecar files that survive crashes and are offered back on reopening.

Painted labels are saved beside the tomogram (``<stem>.cryoli-labels.mrc`` plus a small JSON with
the class ontology), or in a chosen folder / the user cache when the tomogram's folder is not
writable or the tomogram has no file. Every save is atomic and keeps the previous good copy
(``.bak.mrc``), so a crash at any instant leaves at least one complete file to restore.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classes import DEFAULT_ONTOLOGY, Ontology, count_voxels
from .errors import FileFormatError, InputError
from .io.atomic import atomic_write_bytes
from .io.mrc import read_labels, write_mrc

SUFFIX = ".cryoli-labels"


def check_same_grid(
    labels_shape: Sequence[int],
    labels_voxel_nm: Sequence[float] | None,
    image_shape: Sequence[int],
    image_voxel_nm: Sequence[float],
    labels_name: str = "the labels",
    image_name: str = "the image",
) -> None:
    """Raise ``InputError`` unless labels lie on the image's grid: the same shape and the same
    voxel size (to 0.1 %); labels whose voxel size is unknown (None) take the image's."""
    if tuple(labels_shape) != tuple(image_shape):
        raise InputError(
            f"{labels_name} (shape {tuple(labels_shape)}) does not match {image_name} "
            f"(shape {tuple(image_shape)})"
        )
    if labels_voxel_nm is not None and not np.allclose(labels_voxel_nm, image_voxel_nm,
                                                       rtol=1e-3):
        def nm(values: Sequence[float]) -> str:
            return " x ".join(f"{v:.4g}" for v in values)

        raise InputError(
            f"{labels_name} has a voxel size of {nm(labels_voxel_nm)} nm but {image_name} has "
            f"{nm(image_voxel_nm)} nm: paint the labels on the tomogram's grid"
        )


@dataclass(frozen=True)
class AutosaveLocation:
    """Where the annotations of one tomogram are autosaved."""

    labels: Path
    backup: Path
    meta: Path

    @property
    def staging(self) -> Path:
        return self.labels.with_name(self.labels.name.replace(".mrc", ".saving.mrc"))


@dataclass(frozen=True)
class SavedAnnotations:
    """Annotations read back from an autosave."""

    labels: np.ndarray
    ontology: Ontology
    saved_at: float
    path: Path
    counts: dict[int, int]


def default_folder() -> Path:
    """The per-user folder for autosaves of tomograms whose own folder cannot take them."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napari-cryoli" / "autosave"


def autosave_location(
    tomogram_path: str | os.PathLike | None, name: str, folder: str | os.PathLike | None = None
) -> AutosaveLocation:
    """Sidecar paths for a tomogram: beside its file when writable, else in ``folder``.

    Tomograms without a file (sample data, computed layers) are keyed by their layer name.
    """
    if tomogram_path is not None:
        source = Path(tomogram_path).resolve()
        stem = source.name.split(".")[0] or name
        if folder is None and os.access(source.parent, os.W_OK):
            target = source.parent
        else:
            digest = hashlib.sha1(str(source).encode()).hexdigest()[:8]
            target, stem = Path(folder or default_folder()), f"{stem}-{digest}"
    else:
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "tomogram"
        target = Path(folder or default_folder())
    base = target / f"{stem}{SUFFIX}"
    return AutosaveLocation(
        labels=base.with_name(base.name + ".mrc"),
        backup=base.with_name(base.name + ".bak.mrc"),
        meta=base.with_name(base.name + ".json"),
    )


def save_annotations(
    location: AutosaveLocation,
    labels: np.ndarray,
    *,
    voxel_size_nm: tuple[float, ...],
    origin_nm: tuple[float, ...] | None = None,
    ontology: Ontology = DEFAULT_ONTOLOGY,
    source: str | None = None,
) -> None:
    """Save labels atomically, keeping the previous save as the backup."""
    location.labels.parent.mkdir(parents=True, exist_ok=True)
    write_mrc(
        location.staging, np.asarray(labels, dtype=np.uint8), voxel_size_nm=voxel_size_nm,
        origin_nm=origin_nm, labels=True,
    )
    if location.labels.exists():
        os.replace(location.labels, location.backup)
    os.replace(location.staging, location.labels)
    meta = {
        "format": "napari-cryoli annotations",
        "version": 1,
        "saved_at": time.time(),
        "shape": list(labels.shape),
        "voxel_size_nm": list(voxel_size_nm),
        "source": source,
        "classes": ontology.to_dict(),
    }
    atomic_write_bytes(location.meta, json.dumps(meta, indent=1).encode())


def find_annotations(
    location: AutosaveLocation, shape: tuple[int, ...] | None = None
) -> Path | None:
    """The newest readable autosave (main file, else backup) matching ``shape``, if any."""
    for path in (location.labels, location.backup):
        if not path.exists():
            continue
        try:
            saved = read_labels(path)
        except FileFormatError:
            continue
        if shape is None or tuple(saved.data.shape) == tuple(shape):
            return path
    return None


def load_annotations(location: AutosaveLocation, shape: tuple[int, ...] | None = None) -> SavedAnnotations:
    """Read back the newest good autosave; raises FileFormatError when there is none."""
    path = find_annotations(location, shape)
    if path is None:
        raise FileFormatError(f"no usable autosaved annotations at {location.labels}")
    labels = np.array(read_labels(path).data, dtype=np.uint8)
    ontology, saved_at = DEFAULT_ONTOLOGY, path.stat().st_mtime
    try:
        meta = json.loads(location.meta.read_text())
        ontology = Ontology.from_dict(meta["classes"])
        saved_at = float(meta.get("saved_at", saved_at))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # the labels alone are enough; the default ontology names the built-in ids
    return SavedAnnotations(labels, ontology, saved_at, path, count_voxels(labels))

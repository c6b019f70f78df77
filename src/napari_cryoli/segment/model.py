"""A trained segmentation model: the network plus everything needed to use it, in one file.

A checkpoint holds the weights and JSON metadata (classes with names and colours, architecture,
intensity normalisation, voxel size, training summary, format version). It loads with
``torch.load(weights_only=True)``, so opening a model file never runs code from it.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..classes import DEFAULT_ONTOLOGY, Ontology
from ..devices import resolve_device
from ..errors import CheckpointError
from ..jobs import Job, R

if TYPE_CHECKING:
    import torch

    from .network import Architecture, UNet3d

FORMAT = "napari-cryoli-segmentation-model"
FORMAT_VERSION = 1

#: Relative voxel-size difference above which a model is said to be used off its training scale.
VOXEL_SIZE_TOLERANCE = 0.15


@dataclass(frozen=True)
class Normalisation:
    """Robust intensity normalisation: ``(x - center) / scale``.

    ``center`` is the median and ``scale`` the spread between the 5th and 95th percentiles of a
    sample of the image. Each tomogram is normalised with its own statistics (``per_image``), so a
    model does not rest on absolute grey levels, which differ between reconstructions; the
    training image's statistics are kept with the model for ``per_image=False`` and for reference.
    """

    center: float
    scale: float
    per_image: bool = True

    @classmethod
    def of(cls, image: np.ndarray, per_image: bool = True, max_samples: int = 2_000_000) -> Normalisation:
        """Statistics of ``image`` from a strided sample (cheap on memory-mapped volumes)."""
        sample = _strided_sample(image, max_samples)
        finite = sample[np.isfinite(sample)]
        if finite.size == 0:
            return cls(0.0, 1.0, per_image)
        p5, p50, p95 = np.percentile(finite, [5, 50, 95])
        scale = float(p95 - p5) or float(np.std(finite)) or 1.0
        return cls(float(p50), scale, per_image)

    def for_image(self, image: np.ndarray, voxel_size_nm=None) -> Normalisation:
        """The normalisation to apply to ``image``: its own statistics when ``per_image``."""
        return Normalisation.of(image, True) if self.per_image else self

    def apply(self, block: np.ndarray) -> np.ndarray:
        out = np.asarray(block, dtype=np.float32) - np.float32(self.center)
        out *= np.float32(1.0 / self.scale)
        return out

    def to_dict(self) -> dict:
        return {"kind": "percentiles", "center": self.center, "scale": self.scale,
                "per_image": self.per_image}

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        return cls(float(d["center"]), float(d["scale"]), bool(d.get("per_image", True)))


def intensity_from_dict(d: dict):
    """The grey-level mapping a checkpoint names: a ``Calibration`` (vacuum 0, Li 1) or, in
    models trained before calibration existed, a percentile ``Normalisation``."""
    from .calibration import Calibration

    return Calibration.from_dict(d) if d.get("kind") == "calibration" else Normalisation.from_dict(d)


def _strided_sample(image: np.ndarray, max_samples: int) -> np.ndarray:
    """About ``max_samples`` voxels spread over the whole volume, read slice by slice."""
    stride = max(1, round((image.size / max_samples) ** (1 / 3)))
    return np.asarray(image[::stride, ::stride, ::stride], dtype=np.float32).ravel()


def flushing_denormals() -> bool:
    """Whether the calling thread flushes denormal floats to zero (seen in plain arithmetic)."""
    return sys.float_info.min * 0.5 == 0.0


@contextmanager
def cpu_math() -> Iterator[None]:
    """Flush denormal floats to zero in the calling thread while the block runs.

    Confident softmax outputs and Adam's squared gradients underflow into denormals, which CPUs
    process ~100x slower: training steps of a small network took 6x longer without this. The
    setting is per thread and inherited by threads started while it holds (torch's OpenMP workers
    among them, which keep it); the calling thread gets its previous setting back at the end, so
    other code in the process (Python's own floats) still sees denormals.
    """
    import torch

    before = flushing_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not before:
            torch.set_flush_denormal(False)


def with_cpu_math(job: Job[R]) -> Job[R]:
    """``job`` run under ``cpu_math`` in whichever thread drives it (set at its first step)."""
    with cpu_math():
        return (yield from job)


class SegmentationModel:
    """A network with its metadata; ``network`` is in eval mode on ``device``."""

    def __init__(
        self,
        network: UNet3d,
        *,
        ontology: Ontology = DEFAULT_ONTOLOGY,
        normalisation: Normalisation,
        voxel_size_nm: tuple[float, float, float] | None = None,
        patch_size: int = 64,
        summary: dict[str, Any] | None = None,
    ) -> None:
        if network.arch.n_classes != len(ontology):
            raise ValueError("the network's outputs do not match the ontology's classes")
        self.network = network.eval()
        self.ontology = ontology
        self.normalisation = normalisation
        self.voxel_size_nm = None if voxel_size_nm is None else tuple(float(v) for v in voxel_size_nm)
        self.patch_size = int(patch_size)
        self.summary = dict(summary or {})

    @classmethod
    def create(
        cls,
        *,
        ontology: Ontology = DEFAULT_ONTOLOGY,
        base_channels: int = 16,
        depth: int = 4,
        smoothing_sigmas: tuple[float, ...] = (1.0, 2.5),
        normalisation: Normalisation,
        voxel_size_nm: tuple[float, float, float] | None = None,
        patch_size: int = 64,
        device: str = "auto",
    ) -> SegmentationModel:
        """A new, untrained model."""
        from .network import Architecture, UNet3d

        arch = Architecture(len(ontology), base_channels, depth, tuple(smoothing_sigmas))
        net = UNet3d(arch).to(resolve_device(device))
        return cls(
            net,
            ontology=ontology,
            normalisation=normalisation,
            voxel_size_nm=voxel_size_nm,
            patch_size=patch_size,
        )

    @property
    def architecture(self) -> Architecture:
        return self.network.arch

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def class_ids(self) -> np.ndarray:
        """Label id of each output channel (uint8)."""
        return np.asarray(self.ontology.ids, dtype=np.uint8)

    def to(self, device: str) -> SegmentationModel:
        self.network.to(resolve_device(device))
        return self

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "ontology": self.ontology.to_dict(),
            "architecture": self.architecture.to_dict(),
            "normalisation": self.normalisation.to_dict(),
            "voxel_size_nm": None if self.voxel_size_nm is None else list(self.voxel_size_nm),
            "patch_size": self.patch_size,
            "summary": self.summary,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the checkpoint atomically: the old file stays whole if anything fails.

        A full disk or a folder that cannot be written raises ``FileFormatError`` (one sentence)
        and leaves no temporary file.
        """
        import torch

        from ..io.atomic import atomic_path, write_error

        path = Path(path)
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "metadata_json": json.dumps(self.metadata()),
            "state_dict": state,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(path, e) from None
        with atomic_path(path) as tmp:
            try:
                with open(tmp, "wb") as f:
                    torch.save(payload, f)
            except OSError as e:
                raise write_error(path, e) from None
            except RuntimeError as e:  # torch's zip writer words a failed write itself
                cause = e.__cause__ if isinstance(e.__cause__, OSError) else _os_error_of(e)
                raise write_error(path, cause) from None

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "auto") -> SegmentationModel:
        """Read a checkpoint written by :meth:`save`; never unpickles arbitrary objects."""
        import torch

        from .network import Architecture, UNet3d

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"model file {path} does not exist")
        try:
            with warnings.catch_warnings():  # e.g. on old pickle protocols: our error says it all
                warnings.simplefilter("ignore")
                payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure to read means "not a usable model"
            reason = "it holds pickled objects" if "weights_only" in str(e).lower() else "it is unreadable"
            raise CheckpointError(f"{path.name} is not a napari-cryoli model file ({reason})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CheckpointError(f"{path.name} is not a napari-cryoli model file")
        version = payload.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path.name} was written by a newer napari-cryoli (model format {version}); "
                "update napari-cryoli to use it"
            )
        try:
            meta = json.loads(payload["metadata_json"])
            arch = Architecture.from_dict(meta["architecture"])
            net = UNet3d(arch)
            net.load_state_dict(payload["state_dict"])
            model = cls(
                net,
                ontology=Ontology.from_dict(meta["ontology"]),
                normalisation=intensity_from_dict(meta["normalisation"]),
                voxel_size_nm=meta.get("voxel_size_nm"),
                patch_size=int(meta.get("patch_size", 64)),
                summary=meta.get("summary") or {},
            )
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(
                f"{path.name} is a damaged napari-cryoli model file ({_one_line(e)})"
            ) from None
        return model.to(device)

    def compatibility_warnings(
        self, ontology: Ontology | None = None, voxel_size_nm: tuple[float, ...] | float | None = None
    ) -> list[str]:
        """Plain sentences on why this model may not suit data with this ontology and voxel size."""
        warnings = []
        if ontology is not None and ontology.to_dict() != self.ontology.to_dict():
            mine = ", ".join(f"{c.id}={c.name}" for c in self.ontology)
            theirs = ", ".join(f"{c.id}={c.name}" for c in ontology)
            warnings.append(f"The model was trained for classes {mine}, not {theirs}.")
        if voxel_size_nm is None:
            return warnings
        given = np.broadcast_to(np.asarray(voxel_size_nm, dtype=float), (3,))
        if self.voxel_size_nm is not None:
            trained = np.asarray(self.voxel_size_nm, dtype=float)
            if np.any(np.abs(given / trained - 1) > VOXEL_SIZE_TOLERANCE):
                warnings.append(
                    f"The model was trained at a voxel size of {_fmt(trained)} nm, "
                    f"this image has {_fmt(given)} nm: it is resampled to the model's voxels "
                    "and the result returned on the image's grid."
                )
        elif "voxel_size_range_nm" in self.summary:  # pre-trained over a range of voxel sizes
            lo, hi = (float(v) for v in self.summary["voxel_size_range_nm"])
            tol = VOXEL_SIZE_TOLERANCE
            if np.any(given < lo * (1 - tol)) or np.any(given > hi * (1 + tol)):
                warnings.append(
                    f"The model was pre-trained at voxel sizes of {lo:.3g} to {hi:.3g} nm, "
                    f"this image has {_fmt(given)} nm; bin or resample the image into that range."
                )
        return warnings


def _one_line(error: Exception, limit: int = 160) -> str:
    """An exception's message on one line (torch's state-dict errors span several)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _os_error_of(error: Exception) -> OSError:
    """The OSError behind a wrapped write failure (errno from its message when it names one)."""
    import errno

    text = str(error)
    for code, words in ((errno.ENOSPC, "No space left"), (errno.EFBIG, "File too large")):
        if words in text:
            return OSError(code, os.strerror(code))
    return OSError(0, _one_line(error))


def _fmt(v: np.ndarray) -> str:
    return " x ".join(f"{x:.3g}" for x in v)

"""Which torch device a job runs on: one rule for reconstruction, training and prediction."""

from __future__ import annotations

from .errors import InputError


def resolve_device(device: str = "auto", *, cuda_available: bool | None = None) -> str:
    """``"auto"`` means CUDA when torch sees a GPU, else the CPU (``cuda_available`` overrides
    what torch sees, for tests)."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if cuda_available else "cpu"
    if device == "cuda" and not cuda_available:
        raise InputError("CUDA was requested but torch sees no GPU; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device

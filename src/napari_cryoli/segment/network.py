"""The 3D U-Net: a multi-class network sized for a CPU by default, wider and deeper on a GPU.

This module imports torch at the top; import it only inside functions that need the network.
The input goes first through fixed (not learned) Gaussian smoothings at a few scales, given to the
network as extra channels: Li and LiH differ by less than the noise, and a short training on sparse
labels learns faster from a denoised view than from learning to average from scratch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class Architecture:
    """What defines the network's shape; stored in checkpoints."""

    n_classes: int
    base_channels: int = 16
    depth: int = 4
    smoothing_sigmas: tuple[float, ...] = (1.0, 2.5)

    def __post_init__(self) -> None:
        if self.n_classes < 2:
            raise ValueError("a segmentation network needs at least two classes")
        if self.base_channels < 1 or self.depth < 1:
            raise ValueError("base_channels and depth must be positive")

    @property
    def size_multiple(self) -> int:
        """Tile sides must be multiples of this (one halving per level below the top)."""
        return 2 ** (self.depth - 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "smoothing_sigmas": list(self.smoothing_sigmas)}

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        return cls(
            n_classes=int(d["n_classes"]),
            base_channels=int(d["base_channels"]),
            depth=int(d["depth"]),
            smoothing_sigmas=tuple(float(s) for s in d.get("smoothing_sigmas", ())),
        )


class GaussianSmoothing(nn.Module):
    """Fixed separable Gaussian blurs of a one-channel input, stacked after the input itself.

    Each 1D blur (edges extended by repetition) is a product with a banded matrix: a one-channel
    convolution with a long kernel is ~20x slower on CPUs than this matrix product.
    """

    def __init__(self, sigmas: tuple[float, ...]) -> None:
        super().__init__()
        self.sigmas = tuple(float(s) for s in sigmas)
        self._matrices: dict[tuple, torch.Tensor] = {}

    def matrix(self, sigma: float, n: int, like: torch.Tensor) -> torch.Tensor:
        """(n, n) matrix M with ``x @ M.T`` the blur of ``x`` along its last axis."""
        key = (sigma, n, like.device, like.dtype)
        if key not in self._matrices:
            r = max(1, math.ceil(3 * sigma))
            offsets = torch.arange(-r, r + 1)
            k = torch.exp(-0.5 * (offsets / sigma) ** 2)
            k = k / k.sum()
            rows = torch.arange(n)[:, None].expand(n, 2 * r + 1)
            cols = (rows + offsets).clamp(0, n - 1)
            m = torch.zeros(n, n)
            m.index_put_((rows.reshape(-1), cols.reshape(-1)), k.repeat(n), accumulate=True)
            self._matrices[key] = m.to(device=like.device, dtype=like.dtype)
        return self._matrices[key]

    def blur(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """``x`` (batch, channels, z, y, x) blurred by a Gaussian of ``sigma`` voxels."""
        for axis in (2, 3, 4):
            m = self.matrix(sigma, x.shape[axis], x)
            x = torch.matmul(x.movedim(axis, -1), m.T).movedim(-1, axis)
        return x.contiguous()  # movedim leaves strides that slow the convolutions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, *(self.blur(x, sigma) for sigma in self.sigmas)], dim=1)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm3d(c_out),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm3d(c_out),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNet3d(nn.Module):
    """U-Net over (batch, 1, z, y, x) patches, returning per-class logits of the same size.

    Batch normalisation (not instance normalisation) keeps the output of a voxel independent of the
    tile it is predicted in, so sliding-window predictions have no seams from tile statistics.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.smoothing = GaussianSmoothing(arch.smoothing_sigmas)
        widths = [arch.base_channels * 2**i for i in range(arch.depth)]
        c = 1 + len(arch.smoothing_sigmas)
        self.down = nn.ModuleList()
        for w in widths:
            self.down.append(_block(c, w))
            c = w
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose3d(c, w, 2, stride=2))
            self.merge.append(_block(2 * w, w))
            c = w
        self.head = nn.Conv3d(c, arch.n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.smoothing(x)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool3d(x, 2)
            x = block(x)
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)

"""Connected pieces of a phase (dendrites, Cu particles), labelled slab by slab.

``label_pieces`` finds the 26-connected pieces of the voxels a lookup table marks (e.g. the solid,
Li ∪ LiH ∪ Cu) inside a box of a label volume without ever holding a box-sized int32 label
image: each slab is labelled on its own, the pieces that touch across slab faces are joined as
the connected components of a sparse graph (scipy's, iterative: no recursion however many pieces
a noisy segmentation has), pieces under a minimum size are dropped as specks, and the rest are
numbered in raster order of their first voxel, like ``scipy.ndimage.label`` on the whole box,
into a map of the smallest unsigned type that holds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .phases import SLAB_VOXELS, slabs

#: 26-connectivity: pieces touching at an edge or a corner are one piece.
STRUCTURE = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Pieces:
    """Pieces of a phase in a box of a volume, specks dropped."""

    ids: np.ndarray  # piece id (1..n) per voxel of ``box``; 0 outside the phase and on specks
    box: tuple[slice, ...]  # where ``ids`` lies in the volume
    n: int
    n_specks: int  # pieces dropped for being smaller than the minimum
    speck_voxels: int  # voxels of those pieces

    def boxes(self) -> list[tuple[slice, ...] | None]:
        """The box of each piece 1..n in ``ids`` coordinates (None for an unused id)."""
        from scipy import ndimage as ndi

        return ndi.find_objects(self.ids, max_label=self.n) if self.n else []

    @property
    def corner(self) -> np.ndarray:
        return np.array([s.start for s in self.box])


def id_dtype(n: int) -> np.dtype:
    """The smallest unsigned type that holds ids 0..n."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def label_pieces(
    labels: np.ndarray,
    lut: np.ndarray,
    box: tuple[slice, ...] | None = None,
    min_voxels: int = 1,
    *,
    slab_voxels: int = SLAB_VOXELS,
) -> Pieces:
    """The 26-connected pieces of the voxels of ``labels`` (uint8) that ``lut`` (256 bools)
    marks, inside ``box`` (default: everywhere); pieces under ``min_voxels`` are specks (id 0)."""
    from scipy import ndimage as ndi

    if box is None:
        box = tuple(slice(0, n) for n in labels.shape)
    shape = tuple(s.stop - s.start for s in box)
    z_start = box[0].start

    def read(z0: int, z1: int) -> np.ndarray:
        return lut[labels[z_start + z0 : z_start + z1, box[1], box[2]]]

    ranges = slabs(shape, slab_voxels)
    first_pass = None
    sizes, joins, offsets = [], [], [0]
    previous = None
    for z0, z1 in ranges:
        lab, k = ndi.label(read(z0, z1), STRUCTURE)
        sizes.append(np.bincount(lab.reshape(-1), minlength=k + 1)[1:])
        if previous is not None and k:
            joins.append(_joins(previous, lab[0], offsets[-1]))
        previous = np.where(lab[-1] > 0, lab[-1] + offsets[-1], 0)  # global ids, 1-based
        offsets.append(offsets[-1] + k)
        if len(ranges) == 1:
            first_pass = lab
    n_nodes = offsets[-1]
    size = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
    piece = _join(n_nodes, joins)
    n_all = int(piece.max()) + 1 if n_nodes else 0
    piece_size = np.bincount(piece, weights=size, minlength=n_all).astype(np.int64)
    keep = piece_size >= max(int(min_voxels), 1)
    n = int(keep.sum())
    number = np.zeros(n_all, dtype=np.int64)
    number[keep] = np.arange(1, n + 1)
    dtype = id_dtype(n)
    node_id = np.concatenate([[0], number[piece]]).astype(dtype)  # global node (1-based) -> id
    if first_pass is not None:
        ids = node_id[first_pass]
    else:
        ids = np.zeros(shape, dtype=dtype)
        for (z0, z1), start in zip(ranges, offsets[:-1]):
            lab, k = ndi.label(read(z0, z1), STRUCTURE)
            local = np.concatenate([[0], node_id[start + 1 : start + k + 1]]).astype(dtype)
            ids[z0:z1] = local[lab]
    return Pieces(
        ids=ids,
        box=box,
        n=n,
        n_specks=int((~keep).sum()),
        speck_voxels=int(piece_size[~keep].sum()),
    )


def _joins(below: np.ndarray, above: np.ndarray, offset: int) -> np.ndarray:
    """Pairs (node, node), 0-based, of pieces touching across the face between the last plane of
    one slab (``below``, global ids) and the first plane of the next (``above``, local ids)."""
    pairs = []
    ny, nx = below.shape
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            b = below[max(dy, 0) : ny + min(dy, 0), max(dx, 0) : nx + min(dx, 0)]
            a = above[max(-dy, 0) : ny + min(-dy, 0), max(-dx, 0) : nx + min(-dx, 0)]
            both = (b > 0) & (a > 0)
            if both.any():
                pairs.append(
                    (b[both].astype(np.int64) - 1) << 32 | (a[both].astype(np.int64) + offset - 1)
                )
    if not pairs:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(pairs))


def _join(n_nodes: int, joins: Sequence[np.ndarray]) -> np.ndarray:
    """Piece number (0..) of each node: connected components of the join graph, numbered in
    the order of their first node."""
    if not n_nodes:
        return np.zeros(0, dtype=np.int64)
    keys = np.concatenate(joins) if joins else np.zeros(0, dtype=np.int64)
    if keys.size == 0:
        return np.arange(n_nodes, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = keys >> 32, keys & 0xFFFFFFFF
    graph = coo_matrix((np.ones(keys.size, np.int8), (rows, cols)), shape=(n_nodes, n_nodes))
    _, piece = connected_components(graph, directed=False)
    return piece.astype(np.int64)

"""The label ontology: ids, names and colours of the classes, in one place.

Ids are a fixed contract (see the architecture doc): 0 is "not annotated", 1 background, 2 Li,
3 LiH, 4 Cu, 5 SEI; users may add classes with ids 6 and up, which measurements treat as
background.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

UNLABELED = 0
BACKGROUND = 1
LI = 2
LIH = 3
CU = 4
SEI = 5

#: Ids of the battery phases the measurements know.
METAL = (LI, LIH)
PHASES = (LI, LIH, CU, SEI)

RGBA = tuple[float, float, float, float]

# Colours for user-added classes, in order; chosen to stay distinct from the five built-ins.
_CUSTOM_PALETTE: tuple[RGBA, ...] = (
    (0.58, 0.40, 0.74, 1.0),
    (0.09, 0.75, 0.81, 1.0),
    (0.74, 0.74, 0.13, 1.0),
    (0.89, 0.47, 0.76, 1.0),
    (0.55, 0.34, 0.29, 1.0),
    (0.12, 0.47, 0.71, 1.0),
)


@dataclass(frozen=True)
class LabelClass:
    """One class of the ontology."""

    id: int
    name: str
    color: RGBA
    shortcut: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.id <= 255:
            raise ValueError(f"class id {self.id} does not fit in uint8")


@dataclass(frozen=True)
class Ontology:
    """The ordered set of paintable classes (id 0, "not annotated", is implicit)."""

    classes: tuple[LabelClass, ...] = field(default_factory=lambda: DEFAULT_CLASSES)

    def __iter__(self) -> Iterator[LabelClass]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def by_id(self, class_id: int) -> LabelClass:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(f"no class with id {class_id}")

    def name_of(self, class_id: int) -> str:
        if class_id == UNLABELED:
            return "not annotated"
        try:
            return self.by_id(class_id).name
        except KeyError:
            return f"class {class_id}"

    def with_class(self, name: str) -> Ontology:
        """Return the ontology with a new user class appended (next free id, next colour)."""
        name = name.strip()
        if not name:
            raise ValueError("a class needs a name")
        if name.lower() in (n.lower() for n in self.names):
            raise ValueError(f"a class named {name!r} already exists")
        new_id = max(self.ids, default=0) + 1
        n_custom = sum(1 for c in self.classes if c.id > SEI)
        color = _CUSTOM_PALETTE[n_custom % len(_CUSTOM_PALETTE)]
        return replace(self, classes=(*self.classes, LabelClass(new_id, name, color)))

    def colors(self) -> dict[int, RGBA]:
        """Colour per id, with 0 transparent."""
        return {UNLABELED: (0.0, 0.0, 0.0, 0.0), **{c.id: c.color for c in self.classes}}

    def to_dict(self) -> list[dict]:
        """A JSON-able description (stored in checkpoints, sidecars and layer metadata)."""
        return [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes]

    @classmethod
    def from_dict(cls, items: list[dict]) -> Ontology:
        return cls(
            tuple(
                LabelClass(int(d["id"]), str(d["name"]), tuple(float(v) for v in d["color"]))
                for d in items
            )
        )


DEFAULT_CLASSES: tuple[LabelClass, ...] = (
    LabelClass(BACKGROUND, "background", (0.55, 0.55, 0.60, 1.0), "1"),
    LabelClass(LI, "Li", (0.25, 0.55, 1.00, 1.0), "2"),
    LabelClass(LIH, "LiH", (1.00, 0.55, 0.10, 1.0), "3"),
    LabelClass(CU, "Cu", (0.90, 0.15, 0.20, 1.0), "4"),
    LabelClass(SEI, "SEI", (0.20, 0.85, 0.35, 1.0), "5"),
)

DEFAULT_ONTOLOGY = Ontology(DEFAULT_CLASSES)

#: Names of the phases as they appear in reports.
PHASE_NAMES: dict[int, str] = {LI: "Li", LIH: "LiH", CU: "Cu", SEI: "SEI"}


def count_voxels(labels: np.ndarray) -> dict[int, int]:
    """Number of voxels per non-zero id in a uint8 label volume (streamed over slabs)."""
    totals = np.zeros(256, dtype=np.int64)
    for counts in slab_counts(labels):
        totals += counts
    return {i: int(n) for i, n in enumerate(totals) if i != UNLABELED and n}


def slab_counts(labels: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Per-index-along-axis-0 voxel counts of each id, shape (stop - start, 256).

    Counting slice by slice keeps temporary memory small for volumes of any size and lets the
    annotation widget recount only the slices a brush stroke touched.
    """
    if labels.ndim < 2:
        labels = np.reshape(labels, (1, -1))
    stop = labels.shape[0] if stop is None else stop
    out = np.zeros((max(stop - start, 0), 256), dtype=np.int64)
    for i, z in enumerate(range(start, stop)):
        plane = np.asarray(labels[z]).astype(np.uint8, copy=False).ravel()
        out[i] = np.bincount(plane, minlength=256)
    return out

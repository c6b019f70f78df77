"""Phase identification from reflections: a table of cubic phases, pairs of reflections and their
interplanar angle, one zone axis per phase.

A single spacing cannot tell Li 110 (2.48 Å) from Cu2O 111 (2.47 Å), or LiH 200 (2.04 Å) from
Cu 111 (2.09 Å), once the pixel size is uncertain by 1-2 %. A pair can: the ratio of two spacings
and the angle between their planes do not depend on the pixel size, and they fix the zone axis.
Every pair of observed reflections is compared with every pair of reflections of each phase; a
match predicts the whole zone (rotated, possibly mirrored, scaled by the pixel-size error), and the
prediction that explains the most observed reflections wins. What a pair cannot separate, phases
of the same structure whose lattice constants differ by less than the pixel-size tolerance (LiH and
LiF, 1.4 %), is reported as an ambiguity, never decided silently: the phase whose scale is
closest to the stated pixel size is named first and the others are listed with it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .reflections import Reflection

HKL = tuple[int, int, int]

#: Label ids of the local phase map that are not phases of the table.
AMORPHOUS = 1  # no reflection at all: amorphous material, ice or vacuum
UNKNOWN = 255  # reflections that no phase of the table explains

#: Relative difference of the pixel size from the truth that identification tolerates.
PIXEL_TOLERANCE = 0.03
#: Radial (relative) and angular tolerances for matching a reflection to a prediction.
RADIAL_TOLERANCE = 0.015
ANGLE_TOLERANCE_DEG = 2.0
#: Reflections used for the pair search (the strongest), per image or window.
MAX_PAIR_REFLECTIONS = 10


def parse_hkl(text: str | Sequence[int]) -> HKL:
    """"111", "1 1 1", "-1 1 1" or [1, 1, 1] -> (1, 1, 1)."""
    if not isinstance(text, str):
        values = [int(v) for v in text]
    elif any(c in text for c in " ,-"):
        values = [int(v) for v in text.replace(",", " ").split()]
    else:
        values = [int(c) for c in text.strip()]
    if len(values) != 3 or not any(values):
        raise ValueError(f"{text!r} is not a Miller index (h k l)")
    return (values[0], values[1], values[2])


def hkl_text(hkl: Sequence[int]) -> str:
    """(1, -1, 1) -> "1-11" (the crystallographer's compact form)."""
    return "".join(str(int(v)) for v in hkl)


def canonical_zone(zone: Sequence[int]) -> HKL:
    """A cubic zone axis in its standard form: absolute values, ascending, gcd 1 ([011], [112])."""
    values = sorted(abs(int(v)) for v in zone)
    g = math.gcd(*values) or 1
    return (values[0] // g, values[1] // g, values[2] // g)


def family_members(hkl: HKL) -> list[HKL]:
    """Every (h k l) of a cubic family {hkl}, one of each +g/-g pair."""
    out = set()
    for perm in itertools.permutations(hkl):
        for signs in itertools.product((1, -1), repeat=3):
            v = tuple(s * p for s, p in zip(signs, perm))
            first = next(x for x in v if x)
            out.add(v if first > 0 else tuple(-x for x in v))
    return sorted(out, reverse=True)


@dataclass(frozen=True)
class Phase:
    """A cubic phase: lattice constant and the reflection families its structure allows."""

    name: str
    a_A: float
    families: tuple[HKL, ...]
    label: int
    structure: str = ""
    source: str = ""

    def d_A(self, hkl: Sequence[int]) -> float:
        return self.a_A / math.sqrt(sum(int(v) ** 2 for v in hkl))

    @cached_property
    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """(hkl of every reflection (m, 3), index of its family (m,))."""
        hkls, fams = [], []
        for f, fam in enumerate(self.families):
            for m in family_members(fam):
                hkls.append(m)
                fams.append(f)
        return np.array(hkls, int), np.array(fams, int)

    @cached_property
    def reference_pairs(self) -> dict[str, np.ndarray]:
        """Each family's first member a paired with every other non-parallel reflection b, with
        what a match needs: their lengths and angle, the zone a x b, and in that zone's frame the
        index of a and b and their directions."""
        hkls, fams = self.members
        out: dict[str, list] = {k: [] for k in ("a", "b", "ga", "gb", "angle", "zone", "ka",
                                                "base", "pred")}
        for f in range(len(self.families)):
            a = int(np.nonzero(fams == f)[0][0])
            for b in range(len(hkls)):
                zone = np.cross(hkls[a], hkls[b])
                if not zone.any():
                    continue
                zone = tuple(int(v) for v in zone // math.gcd(*[int(v) for v in zone]))
                inside, xy = self.zone(zone)
                ka = _row_of(inside, hkls[a])
                kb = _row_of(inside, hkls[b])
                base = math.atan2(xy[ka, 1], xy[ka, 0])
                pred = math.atan2(xy[kb, 1], xy[kb, 0]) - base
                pred = (pred + math.pi / 2) % math.pi - math.pi / 2
                va, vb = hkls[a].astype(float), hkls[b].astype(float)
                cos = abs(va @ vb) / (np.linalg.norm(va) * np.linalg.norm(vb))
                for key, value in (("a", a), ("b", b), ("ga", np.linalg.norm(va) / self.a_A),
                                   ("gb", np.linalg.norm(vb) / self.a_A),
                                   ("angle", math.degrees(math.acos(min(cos, 1.0)))),
                                   ("zone", zone), ("ka", ka), ("base", base), ("pred", pred)):
                    out[key].append(value)
        return {k: np.array(v) for k, v in out.items()}

    def zone(self, zone: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(hkl (k, 3), 2D reciprocal coordinates (k, 2) in 1/Å) of the reflections in a zone.

        The first axis of the 2D frame is the first in-zone reflection, the second is
        zone x first, so that the frame is right-handed looking down the zone axis.
        """
        key = tuple(int(v) for v in zone)
        cache = self.__dict__.setdefault("_zones", {})
        if key not in cache:
            hkls, _ = self.members
            z = np.asarray(key, float)
            inside = hkls[np.abs(hkls @ z) < 1e-9]
            if len(inside) == 0:
                cache[key] = (inside, np.zeros((0, 2)))
            else:
                e1 = inside[0] / np.linalg.norm(inside[0])
                e2 = np.cross(z, e1)
                e2 /= np.linalg.norm(e2)
                cache[key] = (inside, np.stack([inside @ e1, inside @ e2], axis=1) / self.a_A)
        return cache[key]


def _row_of(rows: np.ndarray, hkl: np.ndarray) -> int:
    """Index of +-hkl among rows."""
    match = np.nonzero((rows == hkl).all(1) | (rows == -hkl).all(1))[0]
    return int(match[0])


@dataclass(frozen=True)
class PhaseTable:
    """The phases identification chooses from; editable as JSON (see :func:`load_table`)."""

    phases: tuple[Phase, ...]

    def by_name(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)

    def by_label(self, label: int) -> Phase | None:
        return next((p for p in self.phases if p.label == label), None)

    def to_dict(self) -> dict:
        return {"phases": [
            {"name": p.name, "structure": p.structure, "a_A": p.a_A, "label": p.label,
             "families": [hkl_text(f) for f in p.families], "source": p.source}
            for p in self.phases]}

    @classmethod
    def from_dict(cls, data: dict, where: str = "the phase table") -> PhaseTable:
        try:
            items = data["phases"]
            phases = tuple(
                Phase(str(d["name"]), float(d["a_A"]),
                      tuple(parse_hkl(f) for f in d["families"]), int(d["label"]),
                      str(d.get("structure", "")), str(d.get("source", "")))
                for d in items
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(
                f"{where} is not a phase table: each phase needs name, a_A, label and families "
                f"({type(e).__name__}: {e})"
            ) from e
        names = [p.name for p in phases]
        labels = [p.label for p in phases]
        if not phases:
            raise FileFormatError(f"{where} lists no phases")
        if len(set(names)) != len(names):
            raise FileFormatError(f"{where} names a phase twice")
        if len(set(labels)) != len(labels) or any(
            not 2 <= v <= 254 for v in labels
        ):
            raise FileFormatError(
                f"{where}: labels must be distinct ids from 2 to 254 (1 is amorphous, 255 "
                "unknown)"
            )
        bad = [p.name for p in phases if not (p.a_A > 0 and math.isfinite(p.a_A))]
        if bad:
            raise FileFormatError(f"{where}: lattice constant of {bad[0]} is not positive")
        return cls(phases)


def default_table() -> PhaseTable:
    """The table shipped with the plugin (Li, LiH, Cu, Li2O, LiF, Cu2O)."""
    text = resources.files(__package__).joinpath("phases.json").read_text()
    return PhaseTable.from_dict(json.loads(text), "the shipped phase table")


def load_table(path: str | os.PathLike | None = None) -> PhaseTable:
    """A phase table from a JSON file (same layout as the shipped phases.json), or the default."""
    if path is None:
        return default_table()
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise FileFormatError(f"{path} does not exist") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"could not read the phase table {path.name}: {e}") from e
    return PhaseTable.from_dict(data, path.name)


# --- identification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A phase reflection whose spacing is within the pixel-size tolerance of an observed one."""

    phase: str
    hkl: HKL  # the family
    d_A: float
    deviation: float  # d_observed / d_phase - 1


@dataclass(frozen=True)
class PhaseMatch:
    """One phase at one zone axis explaining some of the observed reflections."""

    phase: str
    label: int
    zone_axis: HKL
    score: float  # share of the observed reflections' snr it explains
    scale: float  # observed |g| / table |g|: 1 + the pixel-size error it implies
    indices: tuple[int, ...]  # observed reflections it explains
    hkls: tuple[HKL, ...]  # their indices in the zone, in the same order
    ambiguous_with: tuple[str, ...] = ()  # other phases that explain them as well
    missing: int = 0  # reflections the zone predicts inside the innermost match but not seen


@dataclass(frozen=True)
class Identification:
    """Reflections with the phases that explain them."""

    reflections: tuple[Reflection, ...]
    phases: tuple[PhaseMatch, ...]
    candidates: tuple[tuple[Candidate, ...], ...]  # per reflection, by spacing alone
    assigned: tuple[tuple[str, HKL] | None, ...] = field(default=())  # per reflection

    @property
    def amorphous(self) -> bool:
        """No reflection at all: no lattice in the analysed area."""
        return not self.reflections

    def label(self, table: PhaseTable) -> int:
        """Phase-map id: the phase explaining the most reflections at one zone axis; without a
        pair, the one phase every reflection's spacing fits; else amorphous or unknown."""
        if not self.reflections:
            return AMORPHOUS
        if self.phases:
            return self.phases[0].label
        names = {a[0] for a in self.assigned if a is not None}
        if len(names) == 1 and all(a is not None for a in self.assigned):
            return table.by_name(names.pop()).label
        return UNKNOWN


@dataclass(frozen=True)
class Tolerances:
    """How closely observed reflections must fit a prediction."""

    pixel: float = PIXEL_TOLERANCE
    radial: float = RADIAL_TOLERANCE
    angle_deg: float = ANGLE_TOLERANCE_DEG
    step: float = 0.0  # spectrum pixel (1/Å): fits never need to be finer than ~half of it

    def radial_at(self, g: np.ndarray) -> np.ndarray:
        return np.maximum(self.radial * g, 0.6 * self.step)

    def angle_at(self, g: np.ndarray) -> np.ndarray:
        return np.maximum(self.angle_deg, np.degrees(0.6 * self.step / np.maximum(g, 1e-9)))


def spacing_candidates(d_A: float, table: PhaseTable, tol: Tolerances) -> tuple[Candidate, ...]:
    """Table reflections within the pixel-size and radial tolerance of a spacing."""
    out = []
    limit = tol.pixel + tol.radial
    for p in table.phases:
        for fam in p.families:
            dev = d_A / p.d_A(fam) - 1
            if abs(dev) <= limit:
                out.append(Candidate(p.name, fam, p.d_A(fam), dev))
    return tuple(sorted(out, key=lambda c: abs(c.deviation)))


def identify(
    reflections: Sequence[Reflection],
    table: PhaseTable,
    tol: Tolerances = Tolerances(),
    max_phases: int = 3,
    max_pair_reflections: int = MAX_PAIR_REFLECTIONS,
) -> Identification:
    """Phases (each at a zone axis) explaining the reflections, best first, greedily; pairs are
    formed among the ``max_pair_reflections`` strongest."""
    refl = tuple(reflections)
    candidates = tuple(spacing_candidates(r.d_A, table, tol) for r in refl)
    assigned: list[tuple[str, HKL] | None] = [None] * len(refl)
    left = [int(i) for i in np.argsort([-r.snr for r in refl], kind="stable")]
    total = sum(min(r.snr, 1e3) for r in refl) or 1.0
    matches = []
    while len(left) >= 2 and len(matches) < max_phases:
        found = _best_matches(refl, left, table, tol, max_pair_reflections)
        if not found or len(found[0].indices) - found[0].missing < 2:
            break  # a zone needs two reflections more than the low-order ones it misses
        best = found[0]
        others = tuple(
            m.phase for m in found[1:]
            if m.phase != best.phase and set(m.indices) >= set(best.indices)
            and abs(m.scale - 1) <= tol.pixel and m.missing <= best.missing
        )
        score = sum(min(refl[i].snr, 1e3) for i in best.indices) / total
        best = PhaseMatch(best.phase, best.label, best.zone_axis, score, best.scale,
                          best.indices, best.hkls, tuple(dict.fromkeys(others)), best.missing)
        matches.append(best)
        for i, hkl in zip(best.indices, best.hkls):
            assigned[i] = (best.phase, hkl)
        left = [i for i in left if i not in best.indices]
    for i, r in enumerate(refl):  # the rest by spacing alone, when only one phase fits
        if assigned[i] is None and candidates[i]:
            phases = {c.phase for c in candidates[i]}
            if len(phases) == 1:
                assigned[i] = (candidates[i][0].phase, candidates[i][0].hkl)
    return Identification(refl, tuple(matches), candidates, tuple(assigned))


def _best_matches(refl, left, table, tol, max_pair: int) -> list[PhaseMatch]:
    """The best zone-axis match of each phase on the reflections ``left`` (strongest first):
    pairs among the ``max_pair`` strongest, every one of ``left`` counted when it fits."""
    g = np.array([[refl[i].gy, refl[i].gx] for i in left])
    gn = np.linalg.norm(g, axis=1)
    weight = np.array([min(refl[i].snr, 1e3) for i in left])
    k = min(len(left), max_pair)
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    pi, pj = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    cos = np.abs((g[pi] * g[pj]).sum(1)) / (gn[pi] * gn[pj])
    obs_angle = np.degrees(np.arccos(np.clip(cos, 0, 1)))
    keep = obs_angle > 3 * tol.angle_deg  # parallel reflections (harmonics) fix no zone
    pi, pj, obs_angle = pi[keep], pj[keep], obs_angle[keep]
    phi = np.arctan2(g[:, 1], g[:, 0])
    rad_tol, ang_tol = tol.radial_at(gn), tol.angle_at(gn)
    best_per_phase = []
    for phase in table.phases:
        ref = phase.reference_pairs
        sa = gn[pi][:, None] / ref["ga"][None, :]
        sb = gn[pj][:, None] / ref["gb"][None, :]
        rad = (rad_tol[pi] / gn[pi] + rad_tol[pj] / gn[pj])[:, None]
        ok = (np.abs(sa / sb - 1) <= rad) & (np.abs(sa - 1) <= tol.pixel + rad / 2)
        ok &= np.abs(obs_angle[:, None] - ref["angle"][None, :]) <= np.minimum(
            ang_tol[pi], ang_tol[pj])[:, None]
        p_idx, r_idx = np.nonzero(ok)
        if len(p_idx) == 0:
            continue
        ci, cj = pi[p_idx], pj[p_idx]
        obs = (phi[cj] - phi[ci] + np.pi / 2) % np.pi - np.pi / 2
        mirror = np.where(obs * ref["pred"][r_idx] < 0, -1.0, 1.0)
        theta = phi[ci] - mirror * ref["base"][r_idx]
        best = None
        zones = ref["zone"][r_idx]
        unique, which = np.unique(zones, axis=0, return_inverse=True)
        for u, zone in enumerate(unique):
            sel = np.nonzero(which.ravel() == u)[0]
            zone = tuple(int(v) for v in zone)
            m = _evaluate(phase, zone, g, gn, weight, ci[sel], cj[sel], r_idx[sel], ref,
                          mirror[sel], theta[sel], rad_tol, ang_tol, tol)
            if m is not None and (best is None or _rank(m) > _rank(best)):
                best = m
        if best is not None:
            best_per_phase.append(PhaseMatch(
                best.phase, best.label, best.zone_axis, best.score, best.scale,
                tuple(left[i] for i in best.indices), best.hkls, missing=best.missing))
    return sorted(best_per_phase, key=_rank, reverse=True)


def _rank(m: PhaseMatch) -> tuple:
    """More reflections explained, fewer predicted ones missing, more signal, closer scale."""
    return (len(m.indices) - m.missing, round(m.score, 6), -abs(math.log(m.scale)))


def _evaluate(phase, zone, g, gn, weight, ci, cj, r_idx, ref, mirror, theta, rad_tol, ang_tol,
              tol) -> PhaseMatch | None:
    """Score every hypothesis (reference reflection a on g[ci], b on +-g[cj]) of one zone at once;
    return the best that fits within the tolerances."""
    inside, xy = phase.zone(zone)
    scale = gn[ci] / np.linalg.norm(xy[ref["ka"][r_idx]], axis=1)  # (h,)
    c, s = np.cos(theta), np.sin(theta)
    x0, x1 = xy[None, :, 0], xy[None, :, 1] * mirror[:, None]  # (h, k)
    pred = np.stack([x0 * c[:, None] - x1 * s[:, None], x0 * s[:, None] + x1 * c[:, None]],
                    axis=-1) * scale[:, None, None]  # (h, k, 2)
    diff = g[None, :, None, :] - pred[:, None, :, :]  # (h, m, k, 2)
    summ = g[None, :, None, :] + pred[:, None, :, :]
    dist_m = np.einsum("hmkc,hmkc->hmk", diff, diff)  # squared distances to +p and -p
    dist_p = np.einsum("hmkc,hmkc->hmk", summ, summ)
    k_best = np.minimum(dist_m, dist_p).argmin(axis=2)  # (h, m)
    rows = np.arange(len(ci))
    pb = pred[rows[:, None], k_best]  # (h, m, 2)
    length = np.linalg.norm(xy, axis=1)
    pn = length[k_best] * scale[:, None]
    radial_err = np.abs(gn[None, :] - pn)
    cos = np.abs((g[None] * pb).sum(-1)) / np.maximum(gn[None, :] * pn, 1e-12)
    ang_err = np.degrees(np.arccos(np.clip(cos, 0, 1)))
    hit = (radial_err <= rad_tol[None, :]) & (ang_err <= ang_tol[None, :])
    valid = hit[rows, ci] & hit[rows, cj]
    if not valid.any():
        return None
    # scale refined on all matched reflections
    p0 = length[k_best]  # (h, m)
    refined = (hit * gn[None, :] * p0).sum(1) / np.maximum((hit * p0 * p0).sum(1), 1e-30)
    valid &= np.abs(refined - 1) <= tol.pixel
    if not valid.any():
        return None
    # predicted reflections of lower order than every matched one (closer to the origin, so
    # stronger in a kinematic pattern) that no observation covers
    covered = np.zeros((len(ci), len(xy)), bool)
    hh, mm = np.nonzero(hit)
    covered[hh, k_best[hh, mm]] = True
    g_in = np.where(hit, gn[None, :], np.inf).min(1)
    pred_len = length[None, :] * refined[:, None]
    inner = pred_len < g_in[:, None] * (1 - tol.radial)
    missing = (inner & ~covered).sum(1)
    count = hit.sum(1) - missing
    score = (hit * weight[None, :]).sum(1)
    order = np.lexsort((-np.abs(np.log(refined)), score, count))
    h = next(int(v) for v in order[::-1] if valid[v])
    idx = np.nonzero(hit[h])[0]
    signs = np.where(dist_m[h, idx, k_best[h, idx]] <= dist_p[h, idx, k_best[h, idx]], 1, -1)
    hkls = tuple(tuple(int(v) * int(sg) for v in inside[k]) for k, sg in zip(k_best[h, idx],
                                                                             signs))
    return PhaseMatch(phase.name, phase.label, canonical_zone(zone), float(score[h]),
                      float(refined[h]), tuple(int(v) for v in idx), hkls,
                      missing=int(missing[h]))

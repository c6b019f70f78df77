"""Phantoms of varied physics for pre-training: real variation, and no conclusion built in.

``draw_spec`` turns a seed into a ``PhantomSpec`` that varies everything a batch of real
tomograms varies in: what fills the field (1-3 dendrites, 5-60 % metal, mostly-vacuum fields,
fields inside a bundle, holey-carbon edges, gold fiducials, ice contamination), the dendrites'
in-plane angle to the tilt axis (uniform, perpendicular included), the imaging (dose, tilt range
and step, point spread, phase contrast at 1-5 µm defocus, scattering by element, reconstruction
filter, inverted contrast, denoised-looking tomograms) and the specimen's chemistry. The
chemistry is drawn independently of the aging preset's name, so the study's findings are not
taught: the SEI is 5-20 nm thick on Li and on LiH apart, 1.5-2.6 g/cm³ dense (sometimes
1.1); LiH makes up 0-70 % of the metal in 0-3 pieces, buried or at the surface; extended SEI
sits on Li, on LiH, on both or nowhere; Cu, when present, anywhere in the metal.

The field of view is drawn in nm (a finer voxel gives more voxels) and kept to at most
``MAX_VOXELS`` so one simulation takes a few seconds on one core.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import asdict

import numpy as np

from ..errors import InputError
from .phantom import PhantomSpec, required_thickness_nm
from .wbp import WBPSettings

#: Largest phantom drawn, in voxels.
MAX_VOXELS = 3_500_000
#: Range of the metal's share of the field's volume aimed at.
METAL_FRACTION = (0.05, 0.60)


def _benchmark_seeds() -> frozenset[int]:
    from ..segment.pretrain import BENCHMARK_SEEDS

    return frozenset(BENCHMARK_SEEDS)


def draw_spec(
    seed: int,
    voxel_size_nm: float = 2.0,
    *,
    exclude: Collection[int] = (),
    max_voxels: int = MAX_VOXELS,
) -> PhantomSpec:
    """A phantom of varied physics drawn from ``seed``, which is also the phantom's seed.

    Raises ``InputError`` for a seed of the quality benchmark or of ``exclude``.
    """
    seed = int(seed)
    if seed in _benchmark_seeds() or seed in set(exclude):
        raise InputError(f"seed {seed} is kept out of pre-training")
    h = float(voxel_size_nm)
    if not h > 0:
        raise InputError("the voxel size must be positive")
    rng = np.random.default_rng(seed)

    # The specimen's chemistry, independent of the aging name.
    aging = str(rng.choice(["fresh", "24h", "7d"]))
    sei_li, sei_lih = (float(t) for t in rng.uniform(5.0, 20.0, 2))
    sei_density = 1.1 if rng.random() < 0.2 else float(rng.uniform(1.5, 2.6))
    lih_pieces = int(rng.choice([0, 1, 2, 3], p=[0.25, 0.35, 0.2, 0.2]))
    lih_fraction = float(rng.uniform(0.02, 0.7)) if lih_pieces else 0.0
    lih_interior = bool(rng.random() < 0.3)
    extended_on = str(rng.choice(["Li", "LiH", "both", "none"]))
    cu = bool(rng.random() < 0.6)

    # The field: dendrites, angle, film, contamination.
    n = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    diameter = float(rng.uniform(100.0, 200.0 - 20.0 * (n - 1)))  # three big ones overflow
    diameters = (0.95 * diameter, 1.05 * diameter)
    angle = float(rng.uniform(0.0, 180.0))
    bent = bool(rng.random() < 0.4)
    film = str(rng.choice(["full", "holey", "none"], p=[0.6, 0.25, 0.15]))
    film_nm = float(rng.uniform(10.0, 20.0))
    fiducials = int(rng.integers(1, 16)) if rng.random() < 0.4 else 0
    ice = int(rng.integers(1, 5)) if rng.random() < 0.3 else 0
    fraction = float(np.exp(rng.uniform(*np.log(METAL_FRACTION))))  # mostly-vacuum fields common

    # Imaging and reconstruction.
    imaging = {
        "dose_e_per_A2": float(np.exp(rng.uniform(np.log(120.0), np.log(800.0)))),
        "tilt_range_deg": float(rng.uniform(50.0, 66.0)),
        "tilt_step_deg": float(rng.choice([1.0, 2.0, 3.0])),
        "psf_fwhm_nm": float(rng.uniform(1.0, 3.5)),
        "defocus_um": float(rng.uniform(1.0, 5.0)) if rng.random() < 0.5 else 0.0,
        "scattering": "elemental" if rng.random() < 0.5 else "density",
        "inverted": bool(rng.random() < 0.2),
        "denoise_sigma_nm": float(rng.uniform(1.0, 4.0)) if rng.random() < 0.2 else 0.0,
        "wbp": WBPSettings(
            radial_cutoff=float(rng.uniform(0.3, 0.5)),
            sirt_like_iterations=int(rng.choice([0, 0, 0, 8, 20])),
            device="cpu",
        ),
    }
    field = _field(rng, n, diameter, max(sei_li, sei_lih), film_nm, angle, fraction, h, max_voxels)
    spec = {
        **field,
        "voxel_size_nm": h,
        "aging": aging,
        "seed": seed,
        "bent": bent,
        "cu": cu,
        "cu_anywhere": True,
        "sei_thickness_nm": sei_li,
        "sei_thickness_on_lih_nm": sei_lih,
        "sei_density_g_cm3": sei_density,
        "lih_fraction": lih_fraction,
        "lih_pieces": lih_pieces,
        "lih_interior": lih_interior,
        "extended_sei_on": extended_on,
        "diameter_nm": diameters,
        "axis_angle_deg": angle,
        "film": film,
        "film_thickness_nm": film_nm,
        "fiducials": fiducials,
        "ice_blobs": ice,
        **imaging,
    }
    while True:  # until they fit: a wider field; at the budget fewer dendrites, straight ones,
        try:  # then a field narrower than the dendrite
            return PhantomSpec(**spec)
        except InputError as e:
            if "side by side" not in str(e) or spec["overhang_nm"] > 0.7 * diameter:
                raise
            wider = _widen(spec, max_voxels)
            if wider is not None:
                spec = wider
            elif spec["n_dendrites"] > 1:
                spec = {**spec, "n_dendrites": spec["n_dendrites"] - 1}
            elif spec["bent"]:
                spec = {**spec, "bent": False}
            else:
                spec = {**spec, "overhang_nm": spec["overhang_nm"] + 0.1 * diameter}


def _field(rng, n_wanted, diameter, sei_nm, film_nm, angle, fraction, h, max_voxels) -> dict:
    """Shape (and overhang) of a field holding ``n`` dendrites at about ``fraction`` metal.

    The metal fraction is the dendrites' cross-section times their chord through the field over
    the field's volume. Low fractions come from fields that are wide and thick (vacuum above),
    high ones from thin fields narrower than the dendrites (a field inside a bundle).
    """
    a = math.radians(angle)
    along_x = abs(math.sin(a)) > abs(math.cos(a))  # the axis runs nearer x than y
    m = max(abs(math.cos(a)), abs(math.sin(a)))
    z_min = required_thickness_nm(diameter * 1.05, sei_nm, film_nm, h) + h
    # thickness: a little headroom, more for mostly-vacuum fields
    z_nm = z_min + float(rng.uniform(0.0, 0.1 if fraction > 0.3 else 1.0)) * diameter
    min_along = 48 * h
    # the widest field the budget holds, and no field much longer across than along (the
    # dendrites would be stubs): at most 4 times
    area_budget = max_voxels * h**3 / z_nm
    cap = min(area_budget / min_along, math.sqrt(4.0 * area_budget))
    # across: what gives the fraction, within the budget (so a mostly-vacuum field of several
    # dendrites comes out fuller); a field narrower than the dendrites side by side has them
    # reach beyond its sides, the outermost by less than half its width; fewer dendrites when
    # even that is wider than the budget
    for n in range(n_wanted, 0, -1):
        area = n * math.pi * diameter**2 / 4  # metal cross-section, nm²
        need = n * (diameter * 1.05 * 1.07 + 2 * sei_nm + 2 * h) + 20.0
        across = max(area / (fraction * z_nm), need - 0.8 * diameter) / m
        if (need - 0.8 * diameter) / m <= cap:
            break
    across = min(across, cap)
    along = max(
        min_along, across / 4.0, min(float(rng.uniform(200.0, 400.0)), area_budget / across)
    )
    overhang = max(0.0, (need - across * m) / 2 + 2 * h) if across * m < need else 0.0
    nz, n_across = math.ceil(z_nm / h), max(16, round(across / h))
    n_along = max(16, min(round(along / h), max_voxels // (nz * n_across)))
    shape = (nz, n_across, n_along) if along_x else (nz, n_along, n_across)
    return {"shape": shape, "overhang_nm": float(overhang), "n_dendrites": n}


def _widen(spec: dict, max_voxels: int) -> dict | None:
    """The same spec with 15 % more room across the dendrites; ``None`` past the budget."""
    nz, ny, nx = spec["shape"]
    a = math.radians(spec["axis_angle_deg"])
    grow_x = abs(math.cos(a)) >= abs(math.sin(a))  # across is nearer x
    shape = (nz, ny, math.ceil(nx * 1.15)) if grow_x else (nz, math.ceil(ny * 1.15), nx)
    return {**spec, "shape": shape} if math.prod(shape) <= max_voxels else None


def expected_metal_fraction(spec: PhantomSpec) -> float:
    """About the share of the field's volume the metal will fill (before simulating).

    The dendrites' mean cross-section times their chord through the field over its volume,
    cut to the part of the cross-section the field's width holds.
    """
    h = spec.voxel_size_nm
    z_nm, y_nm, x_nm = (k * h for k in spec.shape)
    a = math.radians(spec.axis_angle_deg)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    chord = min(y_nm / c if c > 1e-9 else math.inf, x_nm / s if s > 1e-9 else math.inf)
    d = sum(spec.diameter_nm) / 2
    n = int(spec.n_dendrites)
    across = x_nm * c + y_nm * s  # the field's width across the dendrites
    held = min(1.0, across / (n * d * 1.1)) if spec.overhang_nm else 1.0
    return min(1.0, n * math.pi * d**2 / 4 * held * chord / (z_nm * y_nm * x_nm))


def describe(spec: PhantomSpec) -> dict:
    """What a drawn phantom varies, flat and JSON-ready, for logs and checkpoints."""
    h = spec.voxel_size_nm
    out = {k: v for k, v in asdict(spec).items() if k != "wbp"}
    out["shape"] = list(spec.shape)
    out["diameter_nm"] = list(spec.diameter_nm)
    out["field_nm"] = [round(k * h, 1) for k in spec.shape]
    out["voxels"] = int(np.prod(spec.shape))
    out["expected_metal_fraction"] = round(expected_metal_fraction(spec), 4)
    out["n_views"] = len(spec.angles_deg)
    out.update({f"wbp_{k}": v for k, v in asdict(spec.wbp).items() if k != "thickness"})
    return out

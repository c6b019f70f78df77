"""The dataset subcommands of ``napari-cryoli``: ``batch``, ``compare`` and ``mesh``."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``batch``, ``compare`` and ``mesh`` to the parser (``command`` from build_parser)."""
    p = command("batch", _cmd_batch,
                "Predict and measure many tomograms on a Dask cluster into one dataset table.")
    p.add_argument("tomograms", type=Path, nargs="+", metavar="TOMOGRAM")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True,
                   help="folder for <name>.seg.mrc, <name>.report.json and dataset.csv")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--condition", default="", help="condition of every tomogram")
    which.add_argument("--conditions", type=Path, metavar="CSV",
                       help="table with 'tomogram' and 'condition' columns")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=2,
                       help="worker processes of the local cluster (default 2)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="use the running Dask scheduler at ADDRESS (e.g. tcp://host:8786)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.add_argument("--tile", type=int, help="tile side in voxels (default: the training patch)")
    from ..measure.settings import MeasureSettings  # light: no measurement code
    from ..settings import add_argument

    add_argument(p, MeasureSettings, "extended_threshold_nm")
    p.add_argument("--zarr", action="store_true",
                   help="also write each segmentation as <name>.seg.ome.zarr")

    p = command("compare", _cmd_compare,
                "Per-condition statistics of a dataset table, with confidence intervals, tests.")
    p.add_argument("dataset", type=Path, help="dataset.csv written by napari-cryoli batch")
    p.add_argument("--out", type=Path, required=True, help="folder for the summary and plots")
    p.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--permutations", type=int, default=10_000, help="permutation test draws")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--by", choices=("tomogram", "dendrite"), default="tomogram",
                   help="resample whole tomograms (default) or dendrites as independent")

    p = command("mesh", _cmd_mesh,
                "Meshes of a segmentation for ChimeraX and Amira (GLB, OBJ, STL) in Å.")
    p.add_argument("segmentation", type=Path)
    p.add_argument("--out", type=Path, required=True, help="OUT.glb, OUT.obj or OUT.stl")
    p.add_argument("--classes", nargs="+", metavar="CLASS",
                   help="class names or ids (default: Li LiH Cu SEI present)")
    p.add_argument("--report", type=Path,
                   help="REPORT.json of this segmentation: its settings colour the surface")
    p.add_argument("--faces", type=int, default=200_000,
                   help="target faces per class after decimation (default 200000)")
    p.add_argument("--smooth", type=int, default=10, help="Taubin smoothing iterations")
    p.add_argument("--no-thickness", action="store_true",
                   help="skip colouring the metal by SEI thickness (faster)")
    p.add_argument("--map", type=Path,
                   help="tomogram for the ChimeraX command file to open (default: the "
                   "segmentation)")


def _cmd_batch(args: argparse.Namespace, stop: threading.Event) -> int:
    from ..cli import drive
    from ..errors import InputError
    from .batch import (
        BatchConfig,
        check_batch,
        open_client,
        plan_batch,
        read_conditions,
        run_batch,
    )

    conditions = read_conditions(args.conditions) if args.conditions else None
    items = plan_batch(args.tomograms, condition=args.condition, conditions=conditions)
    if args.zarr:
        import importlib.util

        if importlib.util.find_spec("ome_zarr") is None:
            raise InputError("--zarr needs the ome-zarr package (Python 3.11 or later): "
                             "pip install ome-zarr")
    if args.extended_threshold_nm <= 0:
        raise InputError("the extended-SEI threshold must be positive")
    config = BatchConfig(model=args.model.absolute(), out_dir=args.out_dir.absolute(),
                         device=args.device, tile=args.tile, tta=args.tta,
                         extended_threshold_nm=args.extended_threshold_nm, zarr=args.zarr)
    if args.scheduler is None and args.workers < 1:
        raise InputError(f"a local cluster needs at least one worker, not {args.workers}")
    check_batch(config)  # before a cluster starts
    with open_client(args.workers, args.scheduler) as client:
        job = run_batch(items, config, client, stop)
        where = args.scheduler or f"local cluster of {args.workers} workers"
        print(f"{len(items)} tomograms on {where}; dashboard: {client.dashboard_link}",
              file=sys.stderr)
        result = drive(job, "batch")
    for r in result.results:
        if r.status == "failed":
            print(f"failed: {r.item.name}: {r.error}", file=sys.stderr)
    print(f"{result.count('done')} done, {result.count('skipped')} already done, "
          f"{result.count('failed')} failed, {result.count('not run')} not run; "
          f"wrote {result.table}", file=sys.stderr)
    if result.stopped:
        return 130
    return 1 if result.count("failed") else 0


def _cmd_compare(args: argparse.Namespace, stop: threading.Event) -> int:
    from ..cli import _check_folder, drive
    from .statistics import CompareConfig, compare, write_comparison

    _check_folder(args.out)
    config = CompareConfig(n_bootstrap=args.bootstrap, n_permutations=args.permutations,
                           seed=args.seed, unit=args.by)
    result = drive(compare(args.dataset, config, stop=stop), "compare")
    if result is None:
        print("napari-cryoli compare: stopped, nothing written", file=sys.stderr)
        return 130
    paths = write_comparison(result, args.out)
    for line in result.headline():
        print(line, file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def _cmd_mesh(args: argparse.Namespace, stop: threading.Event) -> int:
    from ..cli import _check_outputs, drive
    from .chimerax import write_chimerax_script
    from .mesh import MeshConfig, check_mesh_path, mesh_segmentation, write_meshes

    check_mesh_path(args.out)
    _check_outputs(args.out)
    config = MeshConfig(classes=tuple(args.classes) if args.classes else None,
                        target_faces=args.faces, smooth_iterations=args.smooth,
                        thickness=not args.no_thickness)
    meshes = drive(mesh_segmentation(args.segmentation, config, report=args.report, stop=stop),
                   "mesh")
    if meshes is None:
        print("napari-cryoli mesh: stopped, nothing written", file=sys.stderr)
        return 130
    written = write_meshes(meshes, args.out)
    script = write_chimerax_script(meshes, written, args.map or args.segmentation,
                                   args.out.with_suffix(".cxc"))
    for note in meshes.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in (*written, script))}", file=sys.stderr)
    return 0

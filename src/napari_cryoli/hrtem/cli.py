"""``napari-cryoli lattice`` and ``napari-cryoli absf``: HRTEM micrographs on the command line."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path


def _micrograph(path: Path, pixel_size_A: float | None):
    from .io import read_micrograph

    m = read_micrograph(path).with_pixel_size(pixel_size_A)
    for note in m.notes:
        print(f"note: {note}", file=sys.stderr)
    return m


def _cmd_lattice(args: argparse.Namespace, stop: threading.Event) -> int:
    from ..cli import _check_outputs, drive
    from ..io import write_mrc
    from .lattice import analyse, report, write_report
    from .phasemap import PhaseMapSettings, phase_map
    from .phases import load_table
    from .reflections import D_RANGE_A

    _check_outputs(args.out, args.phase_map)
    args.d_range = args.d_range or D_RANGE_A
    table = load_table(args.phases)
    m = _micrograph(args.image, args.pixel_size)
    analysis = analyse(m.data, m.pixel_size_A, tuple(args.region) if args.region else None, table,
                       d_range_A=tuple(args.d_range))
    data = report(analysis, m.notes)
    if args.phase_map:
        result = drive(phase_map(m.data, m.pixel_size_A, table,
                                 PhaseMapSettings(window_nm=args.window_nm,
                                                  d_range_A=tuple(args.d_range)), stop),
                       "phase map")
        if result.stopped:
            print("napari-cryoli lattice: stopped, nothing written", file=sys.stderr)
            return 130
        data["phase_map"] = {"path": str(args.phase_map), "window_px": result.window_px,
                             "step_px": result.step_px,
                             "windows": {table.by_label(k).name if table.by_label(k) else
                                         {1: "amorphous", 255: "unknown"}.get(k, str(k)): v
                                         for k, v in result.counts.items()}}
        write_mrc(args.phase_map, result.labels, voxel_size_nm=(m.pixel_size_nm,) * 2,
                  labels=True)
    write_report(data, args.out)
    found = ", ".join(
        f"{p['phase']} [{''.join(str(v) for v in p['zone_axis'])}]"
        + (f" (or {'/'.join(p['ambiguous_with'])})" if p["ambiguous_with"] else "")
        for p in data["phases"]
    ) or ("amorphous: no reflection" if data["amorphous"] else "no phase at a zone axis")
    print(f"{len(data['reflections'])} reflections; {found}; wrote {args.out}", file=sys.stderr)
    return 0


def _cmd_absf(args: argparse.Namespace, stop: threading.Event) -> int:
    from ..cli import _check_outputs
    from ..io import write_mrc
    from .absf import absf
    from .io import read_micrograph

    _check_outputs(args.out, args.difference)
    m = read_micrograph(args.image)
    px = args.pixel_size if args.pixel_size is not None else m.pixel_size_A
    if px is None:
        px = 1.0
        print(f"note: {args.image.name} carries no pixel size; writing 1 Å (give --pixel-size)",
              file=sys.stderr)
    m = m.with_pixel_size(px)
    result = absf(m.data, kernel=args.kernel, iterations=args.iterations)
    write_mrc(args.out, result.filtered, voxel_size_nm=(m.pixel_size_nm,) * 2)
    if args.difference:
        write_mrc(args.difference, result.difference, voxel_size_nm=(m.pixel_size_nm,) * 2)
    print(f"wrote {', '.join(str(p) for p in (args.out, args.difference) if p)}",
          file=sys.stderr)
    return 0


def add_commands(
    command: Callable[[str, Callable, str], argparse.ArgumentParser], only: str | None = None
) -> None:
    """Add ``lattice`` and ``absf`` to the napari-cryoli parser (``only``: as in build_parser,
    the options whose defaults need the micrograph code are added for that command alone)."""
    p = command("lattice", _cmd_lattice,
                "Lattice spacings, reflections and phases (Li, LiH, Cu, ...) of an HRTEM image.")
    p.add_argument("image", type=Path, help="micrograph (.mrc, .tif/.tiff, .dm3/.dm4)")
    p.add_argument("--out", type=Path, required=True, help="report to write (.json)")
    p.add_argument("--pixel-size", type=float, metavar="A",
                   help="pixel size in Å (default: the file's)")
    p.add_argument("--region", type=int, nargs=4, metavar=("Y0", "X0", "Y1", "X1"),
                   help="analyse this rectangle only (pixels, end exclusive)")
    p.add_argument("--phases", type=Path, metavar="TABLE.json",
                   help="phase table (default: the shipped Li, LiH, Cu, Li2O, LiF, Cu2O)")
    p.add_argument("--d-range", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="spacings searched, Å (default 1.1 4.0)")
    p.add_argument("--phase-map", type=Path, metavar="MAP.mrc",
                   help="also write the local phase map (8-bit labels)")
    if only in (None, "lattice"):
        from ..settings import add_argument
        from .phasemap import PhaseMapSettings

        add_argument(p, PhaseMapSettings, "window_nm")

    p = command("absf", _cmd_absf,
                "Average background subtraction filter (Kilaas 1998) of an HRTEM image.")
    p.add_argument("image", type=Path, help="micrograph (.mrc, .tif/.tiff, .dm3/.dm4)")
    p.add_argument("--out", type=Path, required=True, help="filtered image to write (.mrc)")
    p.add_argument("--difference", type=Path, help="raw minus filtered, to write (.mrc)")
    p.add_argument("--pixel-size", type=float, metavar="A",
                   help="pixel size in Å for the output header (default: the file's)")
    p.add_argument("--kernel", type=int, default=5, help="averaging kernel, pixels (default 5)")
    p.add_argument("--iterations", type=int, default=10, help="background passes (default 10)")

"""The ``napari-cryoli`` command line: thin over the packages.

Every subcommand parses its arguments, calls the package API (driving jobs with a text progress
bar) and writes files. Errors a user can cause end in one line on stderr and exit status 2;
Ctrl-C stops a job cleanly (no half-written outputs) with status 130.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import CryoliError, FileFormatError, InputError
from .jobs import Job, TextProgressBar, run_job
from .tomo.wbp import AXIS_ANGLES


def drive(job: Job, label: str, quiet: bool = False):
    """Run a job with a progress bar on stderr and return its result."""
    bar = None if quiet else TextProgressBar(label)
    try:
        return run_job(job, bar)
    finally:
        if bar is not None:
            bar.close()


# --- subcommands -------------------------------------------------------------------------------
# Each takes the parsed arguments and a stop event (set on Ctrl-C) and returns an exit status.


def _cmd_train(args: argparse.Namespace, stop: threading.Event) -> int:
    from .annotations import check_same_grid
    from .classes import DEFAULT_ONTOLOGY, count_voxels
    from .io import read_labels, read_mrc
    from .segment import SegmentationModel, TrainConfig, resolve_device, train
    from .segment.pretrained import choose_start

    _check_outputs(args.out)
    resolve_device(args.device)  # a GPU asked for and missing: say so before anything else
    if len(args.inputs) % 2:
        raise InputError("give tomograms and their labels in pairs: TOMOGRAM LABELS "
                         "[TOMOGRAM LABELS ...]")
    pairs = []
    for tomogram, labels_path in zip(args.inputs[::2], args.inputs[1::2]):
        image = read_mrc(tomogram)
        labels = read_labels(labels_path)
        unknown = any("voxel size" in w for w in labels.warnings)  # takes the image's
        check_same_grid(labels.data.shape, None if unknown else labels.voxel_size_nm,
                        image.data.shape, image.voxel_size_nm, labels_path.name, tomogram.name)
        pairs.append((image, labels))
    image, labels = pairs[0]
    init = SegmentationModel.load(args.init, device=args.device) if args.init else None
    ontology = DEFAULT_ONTOLOGY
    for class_id in sorted(count_voxels(labels.data)):  # user classes 6, 7, ... by number
        if init is None and class_id == max(ontology.ids) + 1:
            ontology = ontology.with_class(f"class {class_id}")
    defaults = TrainConfig()
    config = TrainConfig(
        minutes=args.minutes, max_steps=args.max_steps, seed=args.seed, device=args.device,
        intensity=args.intensity, restore_wedge=args.restore_wedge,
        tilt_range_deg=args.tilt_range,
        base_channels=defaults.base_channels if args.base_channels is None else args.base_channels,
        depth=defaults.depth if args.depth is None else args.depth,
    )
    start = choose_start(init, not args.from_scratch, ontology, config, image.voxel_size_nm)
    init, notes = start.model, list(start.notes)
    if start.pretrained:
        notes[0] += " (--from-scratch to start without it)"
    more = [(im.data, lab.data, im.voxel_size_nm) for im, lab in pairs[1:]]
    job = train(image.data, labels.data, config, ontology=ontology,
                voxel_size_nm=image.voxel_size_nm, init=init, checkpoint_path=args.out, stop=stop,
                more=more)
    for note in notes:  # once the inputs passed: a refusal stays one line
        print(f"note: {note}", file=sys.stderr)
    result = drive(job, "train")
    from .segment.calibration import describe_intensity

    for key in ("intensity_note", "start_check"):
        if key in result.summary:
            note = result.summary[key]
            print(f"note: {note['note'] if isinstance(note, dict) else note}", file=sys.stderr)
    print(f"intensity: {describe_intensity(result.model.normalisation.to_dict())}",
          file=sys.stderr)
    dice = ", ".join(f"{k} {v:.2f}" for k, v in result.best_val_dice.items()) or "none held out"
    what = "stopped" if result.stopped else "trained"
    print(f"{what} after {result.summary['steps']} steps; validation Dice: {dice}; "
          f"wrote {args.out}", file=sys.stderr)
    return 130 if result.stopped else 0


def _nm(values) -> str:
    return " x ".join(f"{v:.4g}" for v in values)


def _cmd_predict(args: argparse.Namespace, stop: threading.Event) -> int:
    from .dataset.zarr import staged_as_mrc

    with staged_as_mrc(args.out) as labels_path:  # an .ome.zarr out: streamed via an MRC
        return _predict(args, labels_path, stop)


def _predict(args: argparse.Namespace, labels_path: Path, stop: threading.Event) -> int:
    from .classes import DEFAULT_ONTOLOGY
    from .io import read_mrc
    from .segment import PredictConfig, PredictOutputs, SegmentationModel, predict

    _check_outputs(labels_path, args.probabilities, args.uncertainty)
    image = read_mrc(args.tomogram)
    if image.kind != "volume":
        raise InputError(f"{args.tomogram.name} is not a 3D volume")
    model = SegmentationModel.load(args.model, device=args.device)
    warnings = model.compatibility_warnings(DEFAULT_ONTOLOGY, image.voxel_size_nm)
    for note in (*image.warnings, *warnings):
        print(f"note: {note}", file=sys.stderr)
    outputs = PredictOutputs(labels=labels_path, probabilities=args.probabilities,
                             uncertainty=args.uncertainty, voxel_size_nm=image.voxel_size_nm,
                             origin_nm=image.origin_nm)
    pooling = {} if args.phase_sigma_nm is None else {"phase_sigma_nm": args.phase_sigma_nm}
    config = PredictConfig(tile=args.tile, tta=args.tta, device=args.device,
                           uncertainty=args.uncertainty is not None,
                           probabilities=args.probabilities is not None,
                           match_noise=args.match_noise, tilt_range_deg=args.tilt_range,
                           **pooling)
    result = drive(predict(image.data, model, config, outputs=outputs,
                           voxel_size_nm=image.voxel_size_nm, stop=stop), "predict")
    if result.stopped:
        print("napari-cryoli predict: stopped, nothing written", file=sys.stderr)
        return 130
    from .segment.calibration import describe_intensity, intensity_warning

    print(f"intensity: {describe_intensity(result.intensity)}", file=sys.stderr)
    if doubt := intensity_warning(result.intensity):
        print(f"warning: {doubt}", file=sys.stderr)
    if result.resampled_from_nm is not None:
        print(f"note: resampled from {_nm(result.resampled_from_nm)} nm to the model's "
              f"{_nm(model.voxel_size_nm)} nm voxels and back", file=sys.stderr)
    written = [args.out, args.uncertainty]
    if args.probabilities:
        written += outputs.probability_paths(model.ontology.names)
    print(f"wrote {', '.join(str(p) for p in written if p)}", file=sys.stderr)
    return 0


def _cmd_measure(args: argparse.Namespace, stop: threading.Event) -> int:
    from .io import read_labels
    from .measure.report import MeasureSettings, measure, write_report

    _check_outputs(args.out, args.csv)
    volume = read_labels(args.segmentation)
    if volume.kind != "volume":
        raise InputError(
            f"{volume.path.name} holds a {_KIND_NAMES[volume.kind]} of shape "
            f"{volume.data.shape}, not a 3D label volume"
        )
    voxel = args.voxel_size_nm if args.voxel_size_nm else volume.voxel_size_nm
    settings = MeasureSettings(extended_threshold_nm=args.extended_threshold_nm)
    # What the file said about itself belongs in the report too (e.g. a voxel size assumed).
    for note in volume.warnings:
        print(f"note: {note}", file=sys.stderr)
    report = drive(measure(volume.data, voxel, settings, stop=stop, notes=volume.warnings),
                   "measure")
    if report.stopped:
        print("napari-cryoli measure: stopped, nothing written", file=sys.stderr)
        return 130
    write_report(report, args.out, args.csv)
    for note in report.notes:
        if note not in volume.warnings:
            print(f"note: {note}", file=sys.stderr)
    written = f"{args.out} and {args.csv}" if args.csv else f"{args.out}"
    print(f"wrote {written}", file=sys.stderr)
    return 0


_KIND_NAMES = {"image": "2D image", "stack": "stack of 2D images", "volume": "volume"}


def _check_outputs(*paths: Path | None) -> None:
    """Fail before any work when an output could not be written (missing folder, a folder)."""
    from .io import check_writable

    for path in paths:
        if path is not None:
            check_writable(path)


def _check_folder(folder: Path) -> None:
    """Fail before any work when ``folder`` (made if missing) could not take the outputs."""
    from .io import check_writable

    chain = (folder, *folder.parents)
    i = next(i for i, p in enumerate(chain) if p.exists())
    if not chain[i].is_dir():
        raise FileFormatError(f"{chain[i]} exists and is not a folder")
    # What will be written first: a file in the folder, or the first folder to make.
    check_writable(chain[i - 1] if i else folder / "tomogram.mrc")


def _cmd_simulate(args: argparse.Namespace, stop: threading.Event) -> int:
    from .tomo.phantom import PhantomSpec, simulate, write_phantom

    given = {
        "shape": tuple(args.shape) if args.shape else None,
        "voxel_size_nm": args.voxel_size_nm,
        "n_dendrites": args.dendrites,
        "sei_thickness_nm": args.sei_thickness_nm,
        "lih_fraction": args.lih_fraction,
        "dose_e_per_A2": args.dose,
        "tilt_range_deg": args.tilt_range,
        "tilt_step_deg": args.tilt_step,
    }
    spec = PhantomSpec(
        aging=args.aging, seed=args.seed, bent=args.bent, cu=args.cu,
        **{k: v for k, v in given.items() if v is not None},
    )
    _check_folder(args.outdir)
    phantom = drive(simulate(spec, stop), "simulate")
    if phantom.stopped:
        print("napari-cryoli simulate: stopped, nothing written", file=sys.stderr)
        return 130
    paths = write_phantom(phantom, args.outdir)
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0


def _cmd_reconstruct(args: argparse.Namespace, stop: threading.Event) -> int:
    from .io import read_tilt_series, write_mrc
    from .tomo.wbp import WBPSettings, axis_on_y, reconstruct

    _check_outputs(args.out)
    series = read_tilt_series(args.tiltseries, args.angles)
    for warning in series.warnings:
        print(f"note: {warning}", file=sys.stderr)
    settings = WBPSettings(
        thickness=args.thickness,
        radial_cutoff=args.radial_cutoff,
        radial_falloff=args.radial_falloff,
        sirt_like_iterations=args.sirt_like,
        device=args.device,
    )
    images = axis_on_y(series.data, args.tilt_axis_angle)
    result = drive(reconstruct(images, series.angles_deg, settings, stop), "reconstruct")
    if result.stopped:
        print("napari-cryoli reconstruct: stopped, nothing written", file=sys.stderr)
        return 130
    pixel = series.pixel_size_nm
    write_mrc(args.out, result.volume, voxel_size_nm=(pixel, pixel, pixel))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace, stop: threading.Event) -> int:
    import napari

    from ._napari.demo import open_demo

    viewer = open_demo()
    if args.quit_after is not None:  # for checks of an installed package under Xvfb
        from qtpy.QtCore import QTimer

        QTimer.singleShot(int(args.quit_after * 1000), viewer.close)
    napari.run()
    return 0


# --- parser ------------------------------------------------------------------------------------


def _train_options(p: argparse.ArgumentParser) -> None:
    """The options of ``train`` (defaults from ``TrainConfig``)."""
    from .segment.training import TrainConfig
    from .settings import add_argument

    p.add_argument("inputs", type=Path, nargs="+", metavar="TOMOGRAM LABELS",
                   help="a tomogram (.mrc/.rec) and its sparse labels (.mrc, 0 = not annotated); "
                   "repeat the pair to train on several tomograms in one run")
    p.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    add_argument(p, TrainConfig, "minutes")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--init", type=Path, help="start from this model (fine-tuning)")
    start.add_argument("--from-scratch", action="store_true",
                       help="start from random weights, not the model pre-trained on simulated "
                       "tomograms")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_argument(p, TrainConfig, "seed")
    add_argument(p, TrainConfig, "max_steps")
    add_argument(p, TrainConfig, "intensity")
    add_argument(p, TrainConfig, "restore_wedge")
    add_argument(p, TrainConfig, "tilt_range_deg", "--tilt-range")
    # None: the network shape of TrainConfig (which the pre-trained model has).
    add_argument(p, TrainConfig, "base_channels", default=None)
    add_argument(p, TrainConfig, "depth", default=None)


def _predict_options(p: argparse.ArgumentParser) -> None:
    """The options of ``predict`` (defaults from ``PredictConfig``)."""
    from .segment.prediction import PredictConfig
    from .settings import add_argument

    p.add_argument("tomogram", type=Path)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True,
                   help="segmentation to write (.mrc, or .ome.zarr: OME-Zarr, opened lazily)")
    p.add_argument("--probabilities", type=Path,
                   help="per-class probabilities, float16: P.mrc writes P_<class>.mrc per class")
    p.add_argument("--uncertainty", type=Path, help="uncertainty map (.mrc)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_argument(p, PredictConfig, "tta")
    add_argument(p, PredictConfig, "tile")
    add_argument(p, PredictConfig, "phase_sigma_nm", default=None)  # None: PredictConfig's
    add_argument(p, PredictConfig, "match_noise")
    add_argument(p, PredictConfig, "tilt_range_deg", "--tilt-range")


def _simulate_options(p: argparse.ArgumentParser) -> None:
    """The options of ``simulate`` (defaults from ``PhantomSpec``)."""
    from .settings import add_argument
    from .tomo.phantom import PhantomSpec

    p.add_argument("outdir", type=Path)
    # None: PhantomSpec's default (its value shows in the help).
    add_argument(p, PhantomSpec, "seed")
    add_argument(p, PhantomSpec, "aging", choices=("fresh", "24h", "7d"))
    add_argument(p, PhantomSpec, "shape", nargs=3, metavar=("Z", "Y", "X"), default=None,
                 help="size in voxels")
    add_argument(p, PhantomSpec, "voxel_size_nm", default=None, help="voxel size")
    add_argument(p, PhantomSpec, "n_dendrites", "--dendrites", dest="dendrites", default=None,
                 help="number of dendrites")
    add_argument(p, PhantomSpec, "bent", help="bent dendrites instead of straight rods")
    add_argument(p, PhantomSpec, "cu", help="a Cu nanoparticle next to the LiH (default: yes)")
    add_argument(p, PhantomSpec, "sei_thickness_nm", help="compact SEI (default: the preset's)")
    add_argument(p, PhantomSpec, "lih_fraction", help="LiH share of the metal (default: preset)")
    add_argument(p, PhantomSpec, "dose_e_per_A2", "--dose", dest="dose", default=None,
                 help="total dose in e/Å²")
    add_argument(p, PhantomSpec, "tilt_range_deg", "--tilt-range", dest="tilt_range",
                 default=None, help="tilts from -R to +R degrees")
    add_argument(p, PhantomSpec, "tilt_step_deg", "--tilt-step", dest="tilt_step", default=None,
                 help="tilt step in degrees")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``only``, the options of that command alone (the others are
    listed without them), so running one command imports only the settings it needs."""
    parser = argparse.ArgumentParser(
        prog="napari-cryoli",
        description="Segment and measure Li, LiH, Cu and SEI in cryo-electron tomograms.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        return p

    # Defaults, ranges and help of settings come from their dataclasses (settings.py); the
    # options of a command whose settings module is heavy are built only when it may run.
    from .measure.settings import MeasureSettings
    from .settings import add_argument
    from .tomo.wbp import WBPSettings

    p = command("train", _cmd_train,
                "Train a 3D U-Net on one or more tomograms and their sparse labels.")
    if only in (None, "train"):
        _train_options(p)

    p = command("predict", _cmd_predict, "Segment a whole tomogram with a trained model.")
    if only in (None, "predict"):
        _predict_options(p)

    p = command("measure", _cmd_measure, "Measure SEI thickness, LiH fraction, Cu, dendrites.")
    p.add_argument("segmentation", type=Path)
    p.add_argument("--out", type=Path, required=True, help="report to write (.json)")
    p.add_argument("--csv", type=Path, help="per-dendrite table to write (.csv)")
    add_argument(p, MeasureSettings, "extended_threshold_nm")
    p.add_argument(
        "--voxel-size-nm", type=float, nargs="+", help="override the file's voxel size (1 or 3 values)"
    )

    p = command("simulate", _cmd_simulate, "Write a synthetic dendrite tomogram with true labels.")
    if only in (None, "simulate"):
        _simulate_options(p)

    p = command("reconstruct", _cmd_reconstruct, "Weighted back-projection of a tilt series.")
    p.add_argument("tiltseries", type=Path)
    p.add_argument("--angles", type=Path, required=True, help="angle file (.tlt/.rawtlt)")
    p.add_argument("--out", type=Path, required=True)
    add_argument(p, WBPSettings, "thickness")
    add_argument(p, WBPSettings, "radial_cutoff")
    add_argument(p, WBPSettings, "radial_falloff")
    add_argument(p, WBPSettings, "sirt_like_iterations", "--sirt-like", dest="sirt_like",
                 metavar="N")
    p.add_argument("--tilt-axis-angle", type=int, default=0, choices=AXIS_ANGLES,
                   help="tilt axis angle from the images' y axis, counterclockwise, for stacks "
                   "not rotated yet (default 0: axis along y)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")

    p = command("demo", _cmd_demo, "Open napari with the sample tomogram and the Workflow panel.")
    p.add_argument("--quit-after", type=float, default=None, help=argparse.SUPPRESS)
    # The micrograph and dataset packages add their own subcommands.
    from .dataset.cli import add_commands as add_dataset_commands
    from .hrtem.cli import add_commands as add_hrtem_commands

    add_hrtem_commands(command, only)
    add_dataset_commands(command)
    return parser


def _version() -> str:
    from . import __version__

    return f"napari-cryoli {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The first word that is not an option names the command ("" when none: no options needed).
    args = build_parser(next((a for a in argv if not a.startswith("-")), "")).parse_args(argv)
    stop = threading.Event()
    previous = _stop_on_first_interrupt(stop)
    try:
        return int(args.func(args, stop) or 0)
    except KeyboardInterrupt:
        print("\nnapari-cryoli: interrupted", file=sys.stderr)
        return 130
    except CryoliError as e:
        print(f"napari-cryoli {args.command}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            f"napari-cryoli {args.command}: error: not enough memory for this volume; nothing "
            "written (close other programs or crop the volume)",
            file=sys.stderr,
        )
        return 2
    except OSError as e:
        # A disk, a permission or a device the packages did not put into words themselves.
        reason = "the disk is full" if e.errno == errno.ENOSPC else e.strerror or str(e)
        where = f": {e.filename}" if e.filename else ""
        print(f"napari-cryoli {args.command}: error: {reason}{where}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _stop_on_first_interrupt(stop: threading.Event):
    """First Ctrl-C asks the running job to stop cleanly; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nnapari-cryoli: stopping after this step (Ctrl-C again to abort)", file=sys.stderr)

    return signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    sys.exit(main())

"""Reading and writing tomograms, labels, tilt series and angle files, faithfully and atomically.

Imports numpy and mrcfile only (never torch, napari or Qt): napari's reader hook imports it.
"""

from .angles import find_angle_file, read_angles, write_angles
from .atomic import atomic_path, atomic_write_bytes, check_writable
from .mrc import DiscardWrite, Volume, open_mrc_for_writing, read_labels, read_mrc, write_mrc
from .tiltseries import TiltSeries, read_tilt_series, write_tilt_series

__all__ = [
    "DiscardWrite",
    "TiltSeries",
    "Volume",
    "atomic_path",
    "atomic_write_bytes",
    "check_writable",
    "find_angle_file",
    "open_mrc_for_writing",
    "read_angles",
    "read_labels",
    "read_mrc",
    "read_tilt_series",
    "write_angles",
    "write_mrc",
    "write_tilt_series",
]

"""Regenerate the Batch widget's screenshot (``xvfb-run -a python docs/screenshots_datasets.py``).

Simulates a fresh, a 24 h and a 7 d tomogram, runs the Batch widget over them on a local Dask
cluster with the shipped model, compares the conditions, opens the 7 d segmentation over its
tomogram, and saves the napari window to ``docs/images/batch.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from screenshots import OUT, SIZE, settle, wait_for


def main() -> int:
    import os

    import napari

    from napari_cryoli.jobs import run_job
    from napari_cryoli.tomo.phantom import PhantomSpec, simulate, write_phantom

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()
    root = Path(tempfile.mkdtemp())
    paths = {}
    for seed, aging in enumerate(("fresh", "24h", "7d")):
        spec = PhantomSpec(aging=aging, seed=seed, shape=(64, 128, 128), diameter_nm=(40.0, 80.0))
        paths[aging] = write_phantom(run_job(simulate(spec)), root / aging)["tomogram"]

    viewer = napari.Viewer(title="napari-cryoli")
    viewer.window.resize(*SIZE)
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "Batch")
    for aging, path in paths.items():
        widget.add_tomograms([path], condition=aging)
    widget.out_edit.setText(str(root / "results"))
    wait_for(widget.start())
    wait_for(widget.compare())
    viewer.open(paths["7d"], plugin="napari-cryoli")
    widget.open_segmentation(2).opacity = 0.5
    viewer.dims.set_current_step(0, 32)
    settle(1.0)
    viewer.window.screenshot(str(OUT / "batch.png"), canvas_only=False)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Screenshots of the HRTEM widget (run under Xvfb: ``xvfb-run -a python docs/hrtem_screenshots.py``).

A synthetic micrograph (Li at [001] beside LiH at [011], 0.41 Å/pixel, 45 e/Å²) is written as an
ImageJ TIFF, opened through the plugin's reader and analysed with the real widget, as a user would:
spectrum with rings and reflections, local phase map, and a line across the boundary.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from screenshots import settle, wait_for

OUT = Path(__file__).parent / "images"
SIZE = (1500, 950)


def main() -> int:
    import napari

    from napari_cryoli.hrtem.simulate import Grain, MicrographSpec, simulate_micrograph

    spec = MicrographSpec(layout="two", grains=(Grain("Li", (0, 0, 1), 20.0),
                                                Grain("LiH", (0, 1, 1), 65.0)),
                          shape=(1024, 1024), boundary_deg=60.0, seed=4)
    m = simulate_micrograph(spec)
    path = Path(tempfile.mkdtemp()) / "li_lih.tif"
    tifffile.imwrite(path, m.image, imagej=True, resolution=(1 / 0.041, 1 / 0.041),
                     metadata={"unit": "nm"})
    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-cryoli")
    viewer.window.resize(*SIZE)
    viewer.open(str(path), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "HRTEM")
    settle(1.0)
    wait_for(widget.start_phase_map())
    line = np.array([[30.0, 12.0], [12.0, 30.0]])
    shapes = viewer.add_shapes([line], shape_type="line", name="line", edge_color="white",
                               edge_width=0.15)
    widget.line_picker.set_layer(shapes)
    settle()
    viewer.window.screenshot(str(OUT / "hrtem_phasemap.png"), canvas_only=False)
    wait_for(widget.analyse())
    settle(1.0)
    viewer.window.screenshot(str(OUT / "hrtem_spectrum.png"), canvas_only=False)
    viewer.close()

    # an 8 nm amorphous layer on a LiH grain, vacuum beyond: thickness from a line across it
    spec = MicrographSpec(layout="layer", grains=(Grain("LiH", (0, 1, 1), 40.0),),
                          shape=(768, 768), layer_nm=8.0, boundary_deg=20.0, seed=9)
    path = Path(tempfile.mkdtemp()) / "sei.tif"
    tifffile.imwrite(path, simulate_micrograph(spec).image, imagej=True,
                     resolution=(1 / 0.041, 1 / 0.041), metadata={"unit": "nm"})
    viewer = napari.Viewer(title="napari-cryoli")
    viewer.window.resize(*SIZE)
    viewer.open(str(path), plugin="napari-cryoli")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cryoli", "HRTEM")
    centre = np.array([383.5, 383.5]) * 0.041
    normal = -np.array([np.cos(np.radians(20.0)), np.sin(np.radians(20.0))])
    line = np.array([centre - 4.0 * normal, centre + 13.0 * normal])
    shapes = viewer.add_shapes([line], shape_type="line", name="line", edge_color="white",
                               edge_width=0.12)
    widget.line_picker.set_layer(shapes)
    widget.measure_line()
    settle(1.0)
    viewer.window.screenshot(str(OUT / "hrtem_thickness.png"), canvas_only=False)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

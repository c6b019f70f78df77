"""Open napari on the sample tomogram with the plugin's widgets docked (``napari-cryoli demo``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

PLUGIN = "napari-cryoli"
#: Dock widgets in workflow order (their display names in napari.yaml).
WIDGETS = ("Annotate", "Train", "Predict", "Measure", "Reconstruct")


def open_demo(viewer: napari.Viewer | None = None) -> napari.Viewer:
    """Show the sample tomogram and dock every widget, tabbed, in workflow order."""
    import napari

    viewer = viewer or napari.Viewer(title="napari-cryoli")
    viewer.open_sample(PLUGIN, "dendrite")
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, name)[0] for name in WIDGETS]
    qt_window = getattr(viewer.window, "_qt_window", None)
    if qt_window is not None:  # tabs keep a narrow dock area usable
        for dock in docks[1:]:
            qt_window.tabifyDockWidget(docks[0], dock)
        docks[0].raise_()
    return viewer

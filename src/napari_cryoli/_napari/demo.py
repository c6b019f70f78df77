"""Open napari on the sample tomogram with the Workflow panel (``napari-cryoli demo``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

PLUGIN = "napari-cryoli"
#: Width of the dock area on the right, in pixels: room for the panels' labels and tables.
DOCK_WIDTH = 540


def open_demo(viewer: napari.Viewer | None = None, *, maximise: bool = True) -> napari.Viewer:
    """Show the sample tomogram, the Workflow panel and, below it, the Annotate panel (the first
    step); the window is maximised (``maximise``) and the whole tomogram is in view."""
    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    viewer = viewer or napari.Viewer(title="napari-cryoli")
    viewer.open_sample(PLUGIN, "dendrite")
    dock, workflow = viewer.window.add_plugin_dock_widget(PLUGIN, "Workflow")
    dock.setWindowTitle("Workflow")
    workflow.open_panel("Annotate")
    qt_window = viewer.window._qt_window
    if maximise:
        qt_window.showMaximized()
    qt_window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    QApplication.processEvents()  # lay the window out at its new size before fitting the view
    viewer.reset_view()
    return viewer

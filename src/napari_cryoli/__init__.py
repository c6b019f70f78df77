"""napari-cryoli: segment and measure lithium-metal anodes in cryo-electron tomograms."""

__version__ = "0.1.0"

"""napari sample data: the synthetic Li dendrite tomogram with its true labels."""

from __future__ import annotations


def dendrite_sample() -> list[tuple]:
    """A 24 h-aged dendrite (Li, LiH, Cu, SEI on a carbon film) reconstructed from ±60°."""
    from ..classes import DEFAULT_ONTOLOGY
    from ..contrast import percentile_limits
    from ..jobs import run_job
    from ..tomo.phantom import PhantomSpec, simulate
    from .layers import KEY, labels_style

    phantom = run_job(simulate(PhantomSpec()))
    scale = tuple(phantom.voxel_size_nm)
    image_meta = {KEY: {"path": None, "voxel_size_nm": list(scale), "truth": phantom.truth}}
    labels_meta = {KEY: {"path": None, "classes": DEFAULT_ONTOLOGY.to_dict(), "truth": True}}
    return [
        (
            phantom.tomogram,
            {
                "name": "dendrite tomogram",
                "scale": scale,
                "metadata": image_meta,
                "contrast_limits": percentile_limits(phantom.tomogram),
            },
            "image",
        ),
        (
            phantom.labels,
            {
                "name": "dendrite true labels",
                "scale": scale,
                "opacity": 0.5,
                "visible": False,
                "metadata": labels_meta,
                **labels_style(DEFAULT_ONTOLOGY),
            },
            "labels",
        ),
    ]

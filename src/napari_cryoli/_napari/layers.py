"""Conversions between the project's data and napari layers, in one place.

Layer metadata carries what the compute side needs back: ``metadata["cryoli"]`` holds the source
file, the voxel size in nm and (for labels) the class ontology.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..classes import DEFAULT_ONTOLOGY, UNLABELED, Ontology

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels, Layer

    from ..io.mrc import Volume

KEY = "cryoli"


def volume_layer_data(volume: Volume, name: str | None = None) -> tuple[Any, dict, str]:
    """A napari LayerData tuple for a volume read from a file (image, or labels if written so)."""
    path = Path(volume.path)
    base = name or path.name.split(".")[0]
    if volume.kind == "stack":
        base = f"{base} (tilt series, {volume.data.shape[0]} images)"
    meta = {
        KEY: {
            "path": str(path),
            "voxel_size_nm": list(volume.voxel_size_nm),
            "origin_nm": list(volume.origin_nm),
            "kind": volume.kind,
            "tilt_angles_deg": list(volume.tilt_angles_deg) if volume.tilt_angles_deg else None,
            "warnings": list(volume.warnings),
        },
        "mrc_header": volume.header,
    }
    kwargs: dict[str, Any] = {
        "name": base,
        "scale": tuple(volume.voxel_size_nm),
        "translate": tuple(volume.origin_nm),
        "metadata": meta,
    }
    if volume.kind == "stack":
        kwargs["axis_labels"] = ("tilt", "y", "x")
    if volume.is_labels:
        ontology = DEFAULT_ONTOLOGY
        meta[KEY]["classes"] = ontology.to_dict()
        kwargs.update(labels_style(ontology))
        return np.asarray(volume.data).astype(np.uint8, copy=False), kwargs, "labels"
    return volume.data, kwargs, "image"


def labels_style(ontology: Ontology) -> dict[str, Any]:
    """Colormap and features that show class colours and names on a Labels layer."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = {None: (0.0, 0.0, 0.0, 0.0), **ontology.colors()}
    features = {
        "index": [UNLABELED, *ontology.ids],
        "class": ["not annotated", *ontology.names],
    }
    return {"colormap": DirectLabelColormap(color_dict=colors), "features": features}


def apply_ontology(layer: Labels, ontology: Ontology) -> None:
    """Restyle a Labels layer for ``ontology`` and remember it in the layer metadata."""
    style = labels_style(ontology)
    layer.colormap = style["colormap"]
    layer.features = style["features"]
    layer.metadata.setdefault(KEY, {})["classes"] = ontology.to_dict()


def layer_ontology(layer: Layer) -> Ontology:
    """The ontology stored on a layer (the default one when absent)."""
    classes = layer.metadata.get(KEY, {}).get("classes")
    return Ontology.from_dict(classes) if classes else DEFAULT_ONTOLOGY


def same_layer(a: Layer | None, b: Layer | None) -> bool:
    """True when both are the same layer (plugin widgets see layers through proxies, so not ``is``)."""
    return a is not None and b is not None and a.unique_id == b.unique_id


def voxel_size_nm(layer: Layer) -> tuple[float, ...]:
    """The layer's voxel size in nm (its scale, which the reader sets from the file)."""
    return tuple(float(s) for s in layer.scale)


def file_warnings(layer: Layer) -> tuple[str, ...]:
    """What the reader said about the file a layer was read from (e.g. a voxel size assumed)."""
    return tuple(layer.metadata.get(KEY, {}).get("warnings") or ())


def source_path(layer: Layer) -> Path | None:
    """The file a layer was read from, if any."""
    path = layer.metadata.get(KEY, {}).get("path") or getattr(layer.source, "path", None)
    return Path(path) if path else None


def add_labels_for(
    viewer: napari.Viewer,
    image: Image,
    data: np.ndarray | None = None,
    *,
    name: str | None = None,
    ontology: Ontology = DEFAULT_ONTOLOGY,
) -> Labels:
    """Add a uint8 Labels layer aligned with ``image`` (same shape, scale and translate)."""
    if data is None:
        data = np.zeros(image.data.shape, dtype=np.uint8)
    check_same_grid(image, data.shape)
    layer = viewer.add_labels(
        np.asarray(data, dtype=np.uint8),
        name=name or f"{image.name} labels",
        scale=image.scale,
        translate=image.translate,
        metadata={KEY: {"image": image.name, "path": None}},
        **labels_style(ontology),
    )
    layer.metadata[KEY]["classes"] = ontology.to_dict()
    return layer


def annotation_layer(layers, image: Layer) -> Labels | None:
    """The labels layer painted on ``image`` (made by the Annotate widget), if any."""
    for layer in layers:
        if (
            layer._type_string == "labels"
            and layer.metadata.get(KEY, {}).get("image") == image.name
            and layer.data.shape == image.data.shape
        ):
            return layer
    return None


def check_same_grid(image: Layer, shape: tuple[int, ...], other: Layer | None = None) -> None:
    """Raise InputError when ``shape`` (and ``other``'s scale) do not match ``image``'s grid
    (``annotations.check_same_grid``, the rule the command line follows)."""
    from ..annotations import check_same_grid as same_grid

    same_grid(shape, None if other is None else voxel_size_nm(other), image.data.shape,
              voxel_size_nm(image), "the labels" if other is None else repr(other.name),
              repr(image.name))

"""Everything that imports napari or Qt: reader/writer/sample hooks and dock widgets."""

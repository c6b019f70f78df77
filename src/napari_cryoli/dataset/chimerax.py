"""A ChimeraX command file (.cxc) that opens the map and the meshes with the project's colours.

The meshes are in Å with the map's origin (see ``mesh``), so they land on the map as ChimeraX
places it; ``open script.cxc`` in ChimeraX shows both. Paths are written relative to the script,
so the folder can be moved as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..classes import SEI
from .mesh import THICKNESS_COLORMAP, Meshes


def chimerax_script(meshes: Meshes, mesh_files: Sequence[Path], map_path: Path | None,
                    script: Path) -> str:
    """The commands: open the map (#1; none when ``map_path`` is None), then the meshes,
    coloured and named by class."""
    folder = script.parent.absolute()

    def rel(p: Path) -> str:
        return _quote(os.path.relpath(Path(p).absolute(), folder))

    lines = ["# napari-cryoli meshes: open this file in ChimeraX (open script.cxc)"]
    first = 1
    if map_path is not None:
        lines += [f"open {rel(map_path)} format mrc",
                  "volume #1 style surface level 1.5 transparency 0.8" if _is_labels(map_path)
                  else "volume #1 style image"]
        first = 2
    if len(mesh_files) == 1 and Path(mesh_files[0]).suffix.lower() == ".glb":
        # The GLB carries its colours (class colours, thickness on the metal) per vertex.
        names = ", ".join(m.name for m in meshes.meshes)
        lines += [f"# {Path(mesh_files[0]).name} holds {names}, coloured per vertex",
                  f"open {rel(mesh_files[0])}"]
    else:
        for i, (m, path) in enumerate(zip(meshes.meshes, mesh_files), start=first):
            lines += [f"open {rel(path)}", f"rename #{i} {_quote(m.name)}",
                      f"color #{i} {_hex(m.color)}"]
            if m.class_id == SEI:  # the metal shows through its SEI
                lines.append(f"transparency #{i} 70")
    if meshes.thickness_range_nm is not None:
        lo, hi = meshes.thickness_range_nm
        lines.append(f"# Li and LiH coloured by SEI thickness: {THICKNESS_COLORMAP}, "
                     f"{lo:.3g} to {hi:.3g} nm (GLB only)")
    lines += ["view", ""]
    return "\n".join(lines)


def write_chimerax_script(meshes: Meshes, mesh_files: Sequence[Path], map_path: Path | None,
                          script: Path) -> Path:
    """Write :func:`chimerax_script` atomically to ``script``; returns its path."""
    from ..io import atomic_write_bytes

    atomic_write_bytes(script, chimerax_script(meshes, mesh_files, map_path, script).encode())
    return script


def _is_labels(path: Path) -> bool:
    return ".seg" in Path(path).name or "label" in Path(path).name.lower()


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgba[:3])


def _quote(text: str) -> str:
    return f'"{text}"' if any(c.isspace() for c in text) else text

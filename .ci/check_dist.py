"""Check built distributions: the wheel and the sdist carry the manifest, the pre-trained weights
and the version written in napari_cryoli/__init__.py (``python .ci/check_dist.py dist``)."""

from __future__ import annotations

import ast
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("napari_cryoli/napari.yaml", "napari_cryoli/segment/weights/phantom_pretrained.pt")


def source_version() -> str:
    tree = ast.parse((ROOT / "src" / "napari_cryoli" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "__version__":
            return node.value.value
    raise SystemExit("no __version__ in src/napari_cryoli/__init__.py")


def check_wheel(path: Path, version: str) -> list[str]:
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        problems = [f"{path.name} lacks {n}" for n in NEEDED if n not in names]
        info = f"napari_cryoli-{version}.dist-info"
        meta = Parser().parsestr(z.read(f"{info}/METADATA").decode())
        if meta["Version"] != version:
            problems.append(f"{path.name} has version {meta['Version']}, the source {version}")
        if "Framework :: napari" not in (meta.get_all("Classifier") or []):
            problems.append(f"{path.name} lacks the Framework :: napari classifier")
        entry_points = z.read(f"{info}/entry_points.txt").decode()
        if "napari.manifest" not in entry_points or "napari_cryoli:napari.yaml" not in entry_points:
            problems.append(f"{path.name} lacks the napari.manifest entry point")
        for name in NEEDED:
            if name in names and z.getinfo(name).file_size == 0:
                problems.append(f"{path.name}: {name} is empty")
    return problems


def check_sdist(path: Path, version: str) -> list[str]:
    with tarfile.open(path) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    return [f"{path.name} lacks {n}" for n in (f"src/{m}" for m in NEEDED) if n not in names]


def main(folder: str = "dist") -> int:
    version = source_version()
    dist = Path(folder)
    wheels = sorted(dist.glob(f"napari_cryoli-{version}-*.whl"))
    sdists = sorted(dist.glob(f"napari_cryoli-{version}.tar.gz"))
    if not wheels or not sdists:
        print(f"check_dist: no wheel or sdist of version {version} in {dist}", file=sys.stderr)
        return 1
    problems = [p for w in wheels for p in check_wheel(w, version)]
    problems += [p for s in sdists for p in check_sdist(s, version)]
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {', '.join(p.name for p in wheels + sdists)} carry the manifest, "
              f"the weights and version {version}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

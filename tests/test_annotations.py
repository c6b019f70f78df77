"""The same-grid rule that the command line and the Train widget both follow."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryoli.annotations import check_same_grid
from napari_cryoli.cli import main
from napari_cryoli.errors import InputError
from napari_cryoli.io import write_mrc


def test_labels_must_share_the_image_grid():
    check_same_grid((4, 5, 6), (2.0, 2.0, 2.0), (4, 5, 6), (2.0, 2.0, 2.001))  # within 0.1 %
    check_same_grid((4, 5, 6), None, (4, 5, 6), (2.0, 2.0, 2.0))  # unknown: takes the image's
    with pytest.raises(InputError, match=r"lab.mrc \(shape \(4, 5, 5\)\) does not match tomo"):
        check_same_grid((4, 5, 5), None, (4, 5, 6), (2.0,) * 3, "lab.mrc", "tomo.mrc")
    with pytest.raises(InputError, match="voxel size of 3 x 2 x 2 nm but the image has 2 x 2 x 2"):
        check_same_grid((4, 5, 6), (3.0, 2.0, 2.0), (4, 5, 6), (2.0,) * 3)


def test_train_refuses_labels_on_another_grid(tmp_path, capsys):
    image, labels = tmp_path / "tomo.mrc", tmp_path / "labels.mrc"
    write_mrc(image, np.zeros((8, 8, 8), np.float32), voxel_size_nm=(2.0, 2.0, 2.0))
    write_mrc(labels, np.ones((8, 8, 8), np.uint8), voxel_size_nm=(4.0, 4.0, 4.0), labels=True)
    status = main(["train", str(image), str(labels), "--out", str(tmp_path / "m.pt")])
    assert status == 2
    assert "paint the labels on the tomogram's grid" in capsys.readouterr().err

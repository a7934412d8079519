"""Heatmaps: valid PNGs of the model x attack tables, written only for sections that have numbers."""

import io
import os

import matplotlib.image
import pytest

from amc_dist.evaluation.heatmaps import heatmap_png, write_heatmaps
from amc_dist.evaluation.tables import build_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TABLE = {
    "undefended": {"fgsm": 0.854, "ead": 0.866, "pgd": 0.889, "vat": 0.693},
    "at_fgsm": {"vat": 0.424, "fgsm": 0.055, "ead": 0.512, "pgd": 0.659},
    "amc_target": {"fgsm": 0.051, "ead": 0.084, "pgd": 0.031},  # a missing cell stays blank
}


def decode(png):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_heatmap_is_a_valid_png_that_grows_with_the_table():
    png = heatmap_png(TABLE, "white-box error (%)")
    assert png.startswith(PNG_SIGNATURE)
    small = decode(png)
    assert small.ndim == 3 and small.shape[2] in (3, 4) and small.shape[0] > 100 and small.shape[1] > 200
    bigger = decode(heatmap_png({**TABLE, **{f"m{i}": TABLE["undefended"] for i in range(4)}}, "t"))
    assert bigger.shape[0] > small.shape[0] and bigger.shape[1] == small.shape[1]
    assert small.std() > 0.05  # not a blank canvas
    with pytest.raises(ValueError, match="no rows"):
        heatmap_png({}, "empty")


def test_write_heatmaps_writes_one_png_per_section_with_numbers(tmp_path):
    results = build_results("mnist", whitebox=TABLE, squeezing={"m": {"ead": 0.1}, "m+fs": {"ead": 0.05}})
    written = write_heatmaps(results, str(tmp_path / "figures"))
    assert [os.path.basename(url) for url in written] == ["whitebox.png", "squeezing.png"]
    assert sorted(os.listdir(tmp_path / "figures")) == ["squeezing.png", "whitebox.png"]  # no .part left
    for url in written:
        with open(url, "rb") as handle:
            assert decode(handle.read()).shape[0] > 100

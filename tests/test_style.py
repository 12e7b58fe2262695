"""The chapter's figure style: colour-blind-safe colours, and the text size its PNGs record."""

from __future__ import annotations

import base64
import io
import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from bptt_lib.style import MIN_FONT_KEY, PALETTE, PAPER, _png_with_min_font, use_style

# Machado, Oliveira & Fernandes (2009), severity 1, on linear RGB.
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                      [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                      [0.004733, 0.691367, 0.303900]]}
NORMAL = np.eye(3)
MIN_DELTA_E = 15   # CIE76 ΔE between any two colours of the cycle, as each reader sees them


def lab(color: str, simulate=NORMAL) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour, as seen through the linear-RGB matrix `simulate`."""
    c = np.array(to_rgb(color))
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ np.clip(np.asarray(simulate) @ linear, 0, 1)
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("vision", ["normal", *CVD])
def test_cycle_colours_stay_apart(vision):
    simulate = CVD.get(vision, NORMAL)
    for a, b in itertools.combinations(PALETTE, 2):
        delta = np.linalg.norm(lab(a, simulate) - lab(b, simulate))
        assert delta >= MIN_DELTA_E, f"{vision}: {a} and {b} differ by ΔE {delta:.1f}"
    for color in PALETTE:  # every colour also stands out from the paper background
        assert np.linalg.norm(lab(color, simulate) - lab(PAPER, simulate)) >= 2 * MIN_DELTA_E


def test_the_simulation_sees_a_red_green_clash():
    """Control: a pure red and a green of the same lightness merge for deuteranopes."""
    red, green = "#d62728", "#5c8a00"
    assert np.linalg.norm(lab(red) - lab(green)) > 50
    assert np.linalg.norm(lab(red, CVD["deuteranopia"]) - lab(green, CVD["deuteranopia"])) < 15


def test_png_records_the_smallest_text_and_is_opaque():
    use_style()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1], label="a curve")
    ax.legend(fontsize=7)
    png = Image.open(io.BytesIO(base64.b64decode(_png_with_min_font(fig))))
    plt.close(fig)
    assert float(png.text[MIN_FONT_KEY]) == pytest.approx(7 * 100 / 72, abs=0.01)
    assert png.getextrema()[-1][0] == 255, "transparent pixels: unreadable on the dark theme"

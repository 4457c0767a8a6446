"""The colour panel (app/color_curves.py): it draws what the colour stage estimated and says why (offscreen)."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from app.color_curves import ColourCurvesView, colour_side, verdict  # noqa: E402
from app.side_data import describe_side_data  # noqa: E402
from restoration.pipeline import ArraySource, Pipeline, settings_for  # noqa: E402
from restoration.stage import Shot  # noqa: E402
from test_stage_color import chart_scene, faded_clip  # noqa: E402


def colour_side_data(frames, index=1, **params):
    pipeline = Pipeline(ArraySource(frames), settings_for(["color"], {"color": params}), shots=[Shot(0, len(frames))])
    return pipeline.side_data(index)


def test_panel_draws_the_applied_curves_and_the_estimated_points(qtbot, tmp_path):
    clip = faded_clip(0.7, n=4)
    raw = colour_side_data(clip.degraded)
    side = describe_side_data(raw)
    assert side.raw is raw                                      # the dedicated view gets the data as given
    view = ColourCurvesView()
    qtbot.addWidget(view)
    view.resize(420, 420)
    view.show_side(colour_side(side.raw))
    colour = raw["color"]
    for name in "RGB":
        assert np.allclose(view.curves[name], colour["correction"][name])
        black, white = view.points[name]
        assert 0.0 <= black < white <= 1.0
    # a fade raises the restored contrast of the fast layers: their curves bend away from the identity
    assert np.abs(view.curves["B"] - np.linspace(0, 1, len(view.curves["B"]))).max() > 0.05
    assert view.title.text().startswith("shot 0–3: fade found")
    assert "faded Dmax" in view.title.text()                    # the magenta layer's own loss is restored too
    shot = os.environ.get("FILMRESTORE_SCREENSHOT_DIR")
    if shot:    # a look at the panel: FILMRESTORE_SCREENSHOT_DIR=DIR pytest tests/test_color_curves.py
        view.show()
        qtbot.waitExposed(view)
        view.grab().save(os.path.join(shot, "color_curves_panel.png"))


def test_panel_says_why_colour_was_left_alone(qtbot):
    view = ColourCurvesView()
    qtbot.addWidget(view)
    graded = [np.clip(f * np.float32([1.08, 1.0, 0.92]), 0, 1) for f in chart_scene(4)]
    view.show_side(colour_side(colour_side_data(graded)))
    assert "no fade found" in view.title.text()
    for name in "RGB":                                          # left alone: the identity is drawn
        assert np.allclose(view.curves[name], np.linspace(0, 1, len(view.curves[name])), atol=1e-3)
    grey = [np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2) for f in chart_scene(4)]
    view.show_side(colour_side(colour_side_data(grey)))
    assert "black-and-white" in view.title.text()
    view.show_side(None)
    assert "did not run" in view.title.text() and view.curves == {}


def test_verdict_names_the_overrides():
    clip = faded_clip(0.6, n=3)
    picked = colour_side_data(clip.degraded, mode="neutral", neutral=[80, 5])["color"]
    assert "picked patch" in verdict(picked)


def test_verdict_says_a_cast_whose_whites_would_colour_is_left_alone():
    side = {"shot": [0, 5], "estimate": {"fade_found": False, "white_cast": 0.49},
            "notes": ["no fade found: colour left as it is", "the correction would leave the whites coloured "
                      "(spread 0.49 density): a scan's cast or the scene's own colour, not a fade"]}
    text = verdict(side)
    assert "no fade found" in text and "whites" in text and "0.49" in text
    side["notes"] = side["notes"][:1]
    assert "whites" not in verdict(side)


def test_verdict_says_which_layer_borrowed_the_others_fade():
    side = {"shot": [0, 24], "estimate": {"fade_found": True, "fade_confidence": 1.0, "scale": [0.69, 1.0, 0.69],
                                          "borrowed_share": [1.0, 0.0, 0.0]}, "notes": []}
    assert "cyan (R) shows no black of its own, takes 100% of yellow (B)'s fade" in verdict(side)
    side["estimate"]["borrowed_share"] = [0.0, 0.0, 0.0]
    assert "no black" not in verdict(side)


def test_verdict_says_a_black_beyond_dmax_was_compressed():
    side = {"shot": [0, 3], "estimate": {"fade_found": True, "fade_confidence": 1.0, "scale": [0.6, 1.0, 0.5],
                                         "black_point": [2.8, 3.72, 2.9]}, "model": {"contrast": 0.8}, "notes": []}
    assert "magenta black (density 3.72) lies beyond a print's Dmax" in verdict(side) and "×0.80" in verdict(side)
    side["model"]["contrast"] = 1.0
    assert "Dmax" not in verdict(side)

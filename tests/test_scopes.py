"""Scopes and the difference picture: counts in the right cells, gains that show small changes."""

from __future__ import annotations

import numpy as np

from restoration.scopes import difference, histogram, luma, match_size, scopes, waveform


def test_waveform_puts_each_column_band_at_its_level():
    values = np.zeros((10, 4), np.float32)
    values[:, 0] = 0.0   # black column: bottom row
    values[:, 3] = 1.0   # white column: top row
    values[:, 1] = 0.5
    counts = waveform(values, columns=4, levels=11)
    assert counts.shape == (11, 4)
    assert counts[10, 0] == 10 and counts[0, 3] == 10 and counts[5, 1] == 10
    assert counts.sum() == values.size


def test_histogram_and_parade_per_channel():
    frame = np.zeros((8, 8, 3), np.float32)
    frame[..., 0] = 1.0
    frame[..., 2] = 0.25
    hist = histogram(frame, bins=5)
    assert hist[0, 4] == 64 and hist[1, 0] == 64 and hist[2, 1] == 64
    s = scopes(frame, columns=8, levels=5)
    assert s.parade.shape == (3, 5, 8) and s.waveform.shape == (5, 8)
    assert s.parade[0, 0].max() == 1.0  # red at the top of its third
    assert s.parade[1, 4].max() == 1.0  # green at the bottom
    assert s.histogram.max() == 1.0
    assert s.clipped_low == 0.0 and s.clipped_high == 0.0


def test_luma_weights_are_rec709():
    assert np.isclose(luma(np.ones((1, 1, 3), np.float32))[0, 0], 1.0)
    assert luma(np.array([[[0, 1, 0]]], np.float32))[0, 0] == np.float32(0.7152)


def test_scopes_of_a_large_frame_read_a_subsample_of_rows():
    frame = np.random.default_rng(0).uniform(0, 1, (2160, 64, 3)).astype(np.float32)
    assert scopes(frame).waveform.shape == (256, 64)


def test_difference_shows_only_what_changed_with_its_gain():
    rng = np.random.default_rng(1)
    before = rng.uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
    after = before.copy()
    after[4:8, 4:8] += 4 / 255  # a small repair: 4 codes
    picture, gain, largest = difference(before, after)
    assert 8 <= gain <= 64 and gain == 2 ** round(np.log2(gain))
    assert round(largest) == 4
    assert np.all(picture[4:8, 4:8] > 0.1)
    assert np.all(picture[10:, 10:] == 0)
    unchanged, gain, largest = difference(before, before)
    assert gain == 1.0 and largest == 0.0 and not unchanged.any()
    fixed, gain, _ = difference(before, after, gain=2.0)
    assert gain == 2.0 and np.allclose(fixed[5, 5], 8 / 255, atol=1e-5)


def test_difference_of_an_upscaled_result_compares_at_the_result_size():
    before = np.zeros((4, 4, 3), np.float32)
    after = np.zeros((8, 8, 3), np.float32)
    picture, gain, largest = difference(before, after)
    assert picture.shape == (8, 8, 3) and largest == 0
    assert match_size(np.arange(4).reshape(2, 2), 4, 4).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1],
                                                                      [2, 2, 3, 3], [2, 2, 3, 3]]

"""Stage `stabilize`: sub-pixel weave measurement, pans kept, cuts reset, borders filled, one crop zoom per shot."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import ndimage

from restoration.pipeline import ArraySource, Pipeline, run_stage_on_frames, settings_for
from restoration.stage import Shot
from restoration.stages.stabilize.stage import exposed_pixels
from restoration.stages.stabilize.weave import WeaveTracker, cutoff_period, intended_path, whittaker_smooth

WIDTH, HEIGHT = 224, 176


def scene(seed: int, width: int, height: int) -> np.ndarray:
    """A textured RGB picture (blurred noise plus a few hard edges) in [0.15, 0.9]."""
    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.normal(size=(height, width)), 1.6)
    texture += 0.5 * ndimage.gaussian_filter(rng.normal(size=(height, width)), 6.0)
    for _ in range(6):
        y0, x0 = rng.integers(0, height - 20), rng.integers(0, width - 20)
        texture[y0:y0 + rng.integers(8, 30), x0:x0 + rng.integers(8, 30)] += rng.choice([-1.5, 1.5])
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    grey = 0.15 + 0.75 * texture
    tint = np.array([1.0, 0.93, 0.85])
    return (grey[..., None] * tint).astype(np.float32)


def woven(picture: np.ndarray, dx: float, dy: float, rotation_deg: float = 0.0, origin=(0.0, 0.0),
          size=(WIDTH, HEIGHT)) -> np.ndarray:
    """Exact (spline) view of `picture`: the picture moved by (dx, dy) and turned CCW about the output centre.

    `origin` is where the output's top-left sits in the picture before the weave (a camera position).
    """
    width, height = size
    cx, cy = (width - 1) / 2, (height - 1) / 2
    theta = math.radians(rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    forward = np.array([[c, s], [-s, c]])  # cv2.getRotationMatrix2D's turn: CCW on screen
    inverse = np.linalg.inv(forward)
    # output x -> picture: inverse (x - centre - d) + centre + origin
    offset = -inverse @ np.array([cx + dx, cy + dy]) + np.array([cx + origin[0], cy + origin[1]])
    matrix_yx = np.array([[inverse[1, 1], inverse[1, 0]], [inverse[0, 1], inverse[0, 0]]])
    out = np.empty((height, width, 3), np.float32)
    for ch in range(3):
        out[..., ch] = ndimage.affine_transform(picture[..., ch].astype(np.float64), matrix_yx,
                                                offset=(offset[1], offset[0]), output_shape=(height, width),
                                                order=3, mode="mirror")
    return out


def weave_track(n: int, seed: int, sigma: float = 1.5, rotation: float = 0.15) -> np.ndarray:
    """(n, 3) AR(1) gate weave: dx, dy px, rotation degrees."""
    rng = np.random.default_rng(seed)
    track = np.zeros((n, 3))
    state = rng.normal(size=3)
    for t in range(n):
        state = 0.6 * state + 0.8 * rng.normal(size=3) if t else state
        track[t] = state
    return np.clip(track, -3, 3) * np.array([sigma, sigma, rotation])


def measured_path(frames: list[np.ndarray]) -> np.ndarray:
    tracker = WeaveTracker(frames[0].shape[1], frames[0].shape[0], 0)
    for index, frame in enumerate(frames):
        tracker.add(index, frame)
    return tracker.path.motion()


def pipeline(frames: list[np.ndarray], params: dict, shots: list[Shot]) -> Pipeline:
    return Pipeline(ArraySource(frames), settings_for(["stabilize"], {"stabilize": params}), shots=shots)


def test_known_subpixel_shift_and_turn_are_recovered():
    picture = scene(1, WIDTH + 40, HEIGHT + 40)
    truth = [(0.0, 0.0, 0.0), (0.37, -0.61, 0.0), (-1.23, 0.88, 0.12), (2.6, 1.45, -0.2)]
    frames = [woven(picture, dx, dy, rot, origin=(20, 20)) for dx, dy, rot in truth]
    motion = measured_path(frames)
    for (dx, dy, rot), got in zip(truth, motion):
        assert got[0] == pytest.approx(dx, abs=0.05)
        assert got[1] == pytest.approx(dy, abs=0.05)
        assert -math.degrees(got[2]) == pytest.approx(rot, abs=0.01)


def test_weave_is_removed_to_a_fraction_of_a_pixel_on_a_locked_off_shot():
    picture = scene(2, WIDTH + 40, HEIGHT + 40)
    weave = weave_track(16, seed=3)
    frames = [woven(picture, *w, origin=(20, 20)) for w in weave]
    pipe = pipeline(frames, {"border": "mirror"}, [Shot(0, 16)])
    outputs = [pipe.frame(i) for i in range(16)]
    # every output should sit at one common position: measure them against the first output
    residual = measured_path(outputs)[:, :2]
    residual -= residual.mean(axis=0)
    jitter = float(np.sqrt(np.mean(np.sum(residual ** 2, axis=1))))
    before = float(np.sqrt(np.mean(np.sum((weave[:, :2] - weave[:, :2].mean(0)) ** 2, axis=1))))
    assert before > 1.0
    assert jitter < 0.1
    side = pipe.side_data(5)["stabilize"]["weave"]
    assert side["dx"] == pytest.approx(weave[5, 0] - weave[:, 0].mean(), abs=0.1)
    assert side["rotation_deg"] == pytest.approx(weave[5, 2] - weave[:, 2].mean(), abs=0.02)
    assert side["correction"][0] == pytest.approx(-side["dx"], abs=1e-3)


def test_a_pan_survives_and_tripod_mode_removes_it():
    n, pan = 24, (1.5, -0.5)
    picture = scene(4, WIDTH + 80, HEIGHT + 60)
    weave = weave_track(n, seed=5, sigma=0.7, rotation=0.05)
    origin0 = np.array([10.0, 40.0])
    frames = [woven(picture, *weave[t], origin=tuple(origin0 + t * np.array(pan))) for t in range(n)]
    shots = [Shot(0, n)]
    smooth = run_stage_on_frames("stabilize", frames, {"border": "mirror"}, shots=shots)
    tripod = run_stage_on_frames("stabilize", frames, {"border": "mirror", "mode": "tripod"}, shots=shots)
    # content moves by -pan per frame when the camera pans by +pan
    kept = measured_path(smooth)[-1, :2]
    assert kept[0] == pytest.approx(-pan[0] * (n - 1), abs=1.5)
    assert kept[1] == pytest.approx(-pan[1] * (n - 1), abs=1.5)
    locked = measured_path(tripod)[-1, :2]
    assert np.hypot(*locked) < 0.5
    # and the weave on top of the pan is mostly gone
    steps = np.diff(measured_path(smooth)[:, :2], axis=0) + np.array(pan)
    raw_steps = np.diff(weave[:, :2], axis=0)
    assert np.std(steps) < 0.5 * np.std(raw_steps)


def test_a_cut_resets_the_path_and_shots_do_not_influence_each_other():
    first = [woven(scene(6, WIDTH + 40, HEIGHT + 40), *w, origin=(20, 20)) for w in weave_track(10, seed=7)]
    second = [woven(scene(8, WIDTH + 40, HEIGHT + 40), *w, origin=(20, 20))
              for w in weave_track(10, seed=9, sigma=2.5)]
    clip = first + second
    shots = [Shot(0, 10), Shot(10, 20)]
    pipe = pipeline(clip, {"border": "black"}, shots)
    together = [pipe.frame(i) for i in range(20)]
    alone = run_stage_on_frames("stabilize", second, {"border": "black"}, shots=[Shot(0, 10)])
    for a, b in zip(together[10:], alone):
        assert np.array_equal(a, b)
    path = pipe.side_data(10)["stabilize"]["weave_path"]
    assert path["start"] == 10
    assert len(path["measured_dx"]) == 10
    assert path["measured_dx"][0] == 0.0 and path["measured_dy"][0] == 0.0


def test_fill_leaves_no_black_border_where_black_does():
    picture = scene(10, WIDTH + 40, HEIGHT + 40)
    frames = [woven(picture, *w, origin=(20, 20)) for w in weave_track(12, seed=11, sigma=2.5, rotation=0.3)]
    shots = [Shot(0, 12)]
    filled = run_stage_on_frames("stabilize", frames, {"border": "fill"}, shots=shots)
    black = run_stage_on_frames("stabilize", frames, {"border": "black"}, shots=shots)
    exposed = [f.max(axis=2) < 1 / 255 for f in black]
    dark_black = sum(int(m.sum()) for m in exposed)
    # inside the uncovered border only: cubic resampling may ring a hair below the picture's 0.15 at hard edges
    dark_filled = sum(int((f.max(axis=2)[m] < 0.1).sum()) for f, m in zip(filled, exposed))
    assert dark_black > 100  # the correction really uncovers borders
    assert dark_filled == 0  # the picture never goes below 0.15, nor may the filled border
    # the filled border continues the picture: close to the (known) truth there
    truth_position = np.mean(weave_track(12, seed=11, sigma=2.5, rotation=0.3), axis=0)
    truth = woven(picture, *truth_position, origin=(20, 20))
    errors = np.concatenate([np.abs(f - truth)[m].ravel() for f, m in zip(filled, exposed)])
    assert np.median(errors) < 0.05


def test_crop_uses_one_zoom_per_shot_and_hides_every_border():
    frames = [woven(scene(12, WIDTH + 40, HEIGHT + 40), *w, origin=(20, 20))
              for w in weave_track(10, seed=13, sigma=2.0)]
    frames += [woven(scene(14, WIDTH + 40, HEIGHT + 40), *w, origin=(20, 20))
               for w in weave_track(10, seed=15, sigma=0.5)]
    shots = [Shot(0, 10), Shot(10, 20)]
    pipe = pipeline(frames, {"border": "crop"}, shots)
    zooms = [pipe.side_data(i)["stabilize"]["weave"]["zoom"] for i in range(20)]
    assert len(set(zooms[:10])) == 1 and len(set(zooms[10:])) == 1
    assert zooms[0] > zooms[10] > 1.0  # stronger weave needs more zoom, and only that shot gets it
    node = pipe.nodes[0]
    for shot in shots:
        analysis = node.analysis(shot)
        assert not any(exposed_pixels(analysis.sampling(i), WIDTH, HEIGHT).any() for i in range(shot.start, shot.end))
        # and it is the smallest such zoom: a little less uncovers a border somewhere in the shot
        less = dataclasses.replace(analysis, zoom=1 + 0.9 * (analysis.zoom - 1))
        assert any(exposed_pixels(less.sampling(i), WIDTH, HEIGHT).any() for i in range(shot.start, shot.end))


def test_a_moving_object_does_not_pull_the_estimate():
    picture = scene(16, WIDTH + 40, HEIGHT + 40)
    weave = weave_track(8, seed=17, sigma=1.0, rotation=0.0)
    frames = []
    blob = scene(18, 70, 60)
    for t, w in enumerate(weave):
        frame = woven(picture, *w, origin=(20, 20))
        x0 = 20 + 9 * t  # a large object crossing the frame fast
        frame[60:120, x0:x0 + 70] = blob
        frames.append(frame)
    motion = measured_path(frames)
    expected = weave[:, :2] - weave[0, :2]
    assert np.abs(motion[:, :2] - expected).max() < 0.1


def test_still_frames_pass_bit_exact_and_output_is_deterministic():
    picture = (np.round(scene(19, WIDTH, HEIGHT) * 65535) / 65535).astype(np.float32)
    frames = [picture.copy() for _ in range(6)]
    out = run_stage_on_frames("stabilize", frames, {}, shots=[Shot(0, 6)])
    for frame in out:
        assert frame.dtype == np.float32
        assert np.array_equal(frame, picture)
    woven_frames = [woven(scene(20, WIDTH + 40, HEIGHT + 40), *w, origin=(20, 20)) for w in weave_track(8, 21)]
    a = run_stage_on_frames("stabilize", woven_frames, {}, shots=[Shot(0, 8)])
    b = run_stage_on_frames("stabilize", woven_frames, {}, shots=[Shot(0, 8)])
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_smoother_keeps_a_constant_pan_and_locks_pure_weave():
    t = np.arange(40, dtype=np.float64)
    weave = weave_track(40, seed=22)[:, 0]
    pan = 2.0 * t
    smooth = whittaker_smooth(pan, cutoff_period(0.35))
    assert np.allclose(smooth, pan, atol=1e-6)
    motion = np.zeros((40, 4))
    motion[:, 0] = weave
    motion[:, 1] = pan + weave[::-1]
    intended, models = intended_path(motion, 0.35)
    assert models[0] == "still" and models[1] != "still"
    assert np.ptp(intended[:, 0]) == 0.0


def test_black_and_flat_frames_do_not_break_the_path():
    picture = scene(23, WIDTH + 40, HEIGHT + 40)
    weave = weave_track(18, seed=24, sigma=1.2)
    frames = [woven(picture, *w, origin=(20, 20)) for w in weave]
    blank = (0, 5, 12)  # black at the start, black mid-shot, flat grey where a new key frame would be taken
    frames[0] = np.zeros_like(frames[0])
    frames[5] = np.zeros_like(frames[5])
    frames[12] = np.full_like(frames[12], 0.5)
    pipe = pipeline(frames, {"border": "mirror"}, [Shot(0, 18)])
    outputs = [pipe.frame(i) for i in range(18)]
    assert all(np.array_equal(outputs[i], frames[i]) for i in blank)
    pictured = [i for i in range(18) if i not in blank]
    residual = measured_path([outputs[i] for i in pictured])[:, :2]
    residual -= residual.mean(axis=0)
    assert np.sqrt(np.mean(np.sum(residual ** 2, axis=1))) < 0.1


def test_tiny_frames_and_single_frame_shots_pass_through():
    rng = np.random.default_rng(25)
    for width, height, n in ((8, 8, 3), (40, 30, 2), (WIDTH, HEIGHT, 1)):
        frames = [rng.random((height, width, 3)).astype(np.float32) for _ in range(n)]
        out = run_stage_on_frames("stabilize", frames, {}, shots=[Shot(0, n)])
        assert all(np.array_equal(a, b) for a, b in zip(out, frames))


def test_a_constant_speed_pan_under_weave_comes_out_with_no_nonlinear_jitter():
    from restoration.metrics import frame_shift

    n, pan = 24, np.array([1.5, -0.5])
    picture = scene(31, WIDTH + 80, HEIGHT + 60)
    weave = weave_track(n, seed=32)
    origins = [np.array([10.0, 40.0]) + t * pan for t in range(n)]
    frames = [woven(picture, *weave[t], origin=tuple(origins[t])) for t in range(n)]
    truth = [woven(picture, 0.0, 0.0, origin=tuple(o)) for o in origins]
    pipe = pipeline(frames, {"border": "mirror"}, [Shot(0, n)])
    outputs = [pipe.frame(i) for i in range(n)]
    assert pipe.side_data(0)["stabilize"]["weave_path"]["models"] == {"dx": "pan", "dy": "pan", "rotation": "still"}
    shifts = np.array([frame_shift(o, t) for o, t in zip(outputs, truth)])
    t = np.arange(n, dtype=np.float64)
    line = np.polynomial.polynomial.polyval(t, np.polynomial.polynomial.polyfit(t, shifts, 1)).T
    nonlinear = float(np.sqrt(np.mean(np.sum((shifts - line) ** 2, axis=1))))
    before = shifts_in = np.array([frame_shift(f, g) for f, g in zip(frames, truth)])
    assert np.sqrt(np.mean(np.sum((before - before.mean(0)) ** 2, axis=1))) > 1.0
    assert nonlinear < 0.1
    # what is left is the weave's own linear drift over the shot, which no method can tell from the pan
    weave_slope = np.polynomial.polynomial.polyfit(t, shifts_in[:, :2], 1)[1]
    assert np.polynomial.polynomial.polyfit(t, shifts, 1)[1] == pytest.approx(weave_slope, abs=0.05)


def test_camera_move_model_is_the_simplest_that_leaves_only_weave():
    from restoration.stages.stabilize.weave import camera_move

    period = cutoff_period(0.35)
    for seed in range(5):  # a constant-speed pan: followed exactly, a straight line
        n = 32
        values = -1.2 * np.arange(n) + weave_track(n, seed=40 + seed)[:, 0]
        move = camera_move(values, np.ones(n), period, 0.02)
        assert move.model == "pan"
        assert np.abs(np.diff(move.path, 2)).max() < 1e-9
    # still, then a pan, then still again (a long shot): constant-speed segments with breakpoints at the turns
    n = 120
    t = np.arange(n, dtype=np.float64)
    ramp = np.clip(t - 40, 0, 40) * 1.5
    move = camera_move(ramp + weave_track(n, seed=50)[:, 0], np.ones(n), period, 0.02)
    assert move.model == "segments"
    assert min(abs(b - 40) for b in move.breakpoints) <= 3 and min(abs(b - 80) for b in move.breakpoints) <= 3
    # a curved move is followed, not straightened
    curve = 12.0 * np.sin(t / 12.0)
    move = camera_move(curve + weave_track(n, seed=51)[:, 0], np.ones(n), period, 0.02)
    assert move.model in ("smooth", "segments")
    straightened = curve - np.polyval(np.polyfit(t, curve, 1), t)
    assert np.sqrt(np.mean((move.path - curve) ** 2)) < 0.25 * np.sqrt(np.mean(straightened ** 2))
    # weave alone: held still
    assert camera_move(weave_track(n, seed=52)[:, 0], np.ones(n), period, 0.02).model == "still"
    # unmeasured frames (weight 0) do not count
    weights = np.ones(n)
    values = -0.8 * t + weave_track(n, seed=53)[:, 0]
    values[[10, 60]] = 500.0
    weights[[10, 60]] = 0
    move = camera_move(values, weights, period, 0.02)
    assert move.model == "pan" and np.abs(move.path[60] + 0.8 * 60) < 2.0


def test_jolts_and_splice_jumps_are_corrected_without_bending_the_camera_path():
    from restoration.stages.stabilize.weave import find_jolts

    for seed in range(4):
        n = 60
        t = np.arange(n, dtype=np.float64)
        weave = weave_track(n, seed=60 + seed, sigma=0.6)
        motion = np.zeros((n, 4))
        motion[:, 0] = 0.8 * t + weave[:, 0]
        motion[:, 1] = weave[:, 1]
        rng = np.random.default_rng(seed)
        at, length, size = int(rng.integers(10, 45)), int(rng.integers(1, 4)), float(rng.uniform(10, 25))
        motion[at:at + length, 1] -= size  # a splice jump: 1-3 frames displaced, then back
        jolts = find_jolts(motion)
        assert set(np.nonzero(jolts)[0]) == set(range(at, at + length)), seed
        intended, models = intended_path(motion, 0.35, measured=~jolts)
        assert models[1] == "still" and models[0] == "pan", models
        # the jolt frames are brought back onto the path the other frames follow
        assert np.abs(intended[at:at + length, 1] - intended[0, 1]).max() < 1e-9
    # weave alone (even strong weave) holds no jolt
    for seed in range(10):
        motion = np.zeros((80, 4))
        motion[:, :2] = weave_track(80, seed=70 + seed, sigma=1.5)[:, :2]
        assert not find_jolts(motion).any()


def test_an_accelerating_tilt_is_followed_smoothly_with_no_jump_between_segments():
    n = 90
    t = np.arange(n, dtype=np.float64)
    # a tilt speeding up from 0.55 to 1.1 px/frame over the shot
    tilt = 0.55 * t + 0.55 * t ** 2 / (2 * (n - 1))
    errors, kinks = [], []
    for seed in range(5):
        motion = np.zeros((n, 4))
        motion[:, 1] = tilt + weave_track(n, seed=80 + seed, sigma=0.6)[:, 1]
        intended, models = intended_path(motion, 0.35)
        errors.append(np.abs(intended[:, 1] - tilt).max())
        kinks.append(np.abs(np.diff(intended[:, 1] - tilt)).max())
    assert np.mean(errors) < 0.5 and max(kinks) < 0.1, (errors, kinks)


def test_slow_sway_beyond_the_weave_is_kept_and_weave_alone_is_not():
    from restoration.stages.stabilize.weave import follow_shake

    n = 96
    t = np.arange(n, dtype=np.float64)
    sway = 6.0 * np.sin(2 * np.pi * t / 40)  # a vehicle's sway, intended
    weave = weave_track(n, seed=90, sigma=0.4)[:, 0]
    kept = follow_shake(sway + weave, np.zeros(n), np.ones(n), 0.02)
    assert np.sqrt(np.mean((kept - sway) ** 2)) < 0.25 * np.sqrt(np.mean(sway ** 2))
    for seed in range(20):
        weave = weave_track(n, seed=100 + seed)[:, 0]
        assert np.array_equal(follow_shake(weave, np.zeros(n), np.ones(n), 0.02), np.zeros(n))


def test_black_pillarbox_bars_stay_put_and_are_never_pasted_into_the_picture():
    from restoration.stages.stabilize.weave import Gate, find_gate

    n, bar = 14, 10
    picture = scene(110, WIDTH + 40, HEIGHT + 40)
    frames = []
    for w in weave_track(n, seed=111, sigma=2.0):
        frame = woven(picture, *w, origin=(20, 20))
        frame[:, :bar] = 0.02  # burnt-in black bars: static, not woven
        frame[:, -bar:] = 0.02
        frames.append(frame)
    luma = frames[0] @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    assert find_gate(luma) == Gate(bar, bar, 0, 0)
    pipe = pipeline(frames, {"border": "fill"}, [Shot(0, n)])
    for i in range(n):
        out = pipe.frame(i)
        assert np.array_equal(out[:, :bar], frames[i][:, :bar]) and np.array_equal(out[:, -bar:], frames[i][:, -bar:])
        inner = out[:, bar:-bar].mean(axis=2)
        assert inner.min() > 0.06, i  # no bar (0.02) pasted or replicated into the picture (scene >= 0.13)
        side = pipe.side_data(i)["stabilize"]["weave"]
        gate = side["gate"]  # the bar and at most its one soft pixel
        assert bar <= gate["left"] <= bar + 1 and bar <= gate["right"] <= bar + 1 and gate["top"] == gate["bottom"] == 0
    # with the bars left out of the estimate, the picture inside is still registered to a fraction of a pixel
    residual = measured_path([pipe.frame(i)[:, bar:-bar] for i in range(n)])[:, :2]
    residual -= residual.mean(axis=0)
    assert np.sqrt(np.mean(np.sum(residual ** 2, axis=1))) < 0.15


def test_analysis_splits_into_a_measurement_and_a_cheap_fit():
    from restoration.stages.stabilize.stage import GateWeave

    n = 20
    picture = scene(120, WIDTH + 60, HEIGHT + 40)
    frames = [woven(picture, *w, origin=(10 + 0.8 * t, 20)) for t, w in enumerate(weave_track(n, seed=121))]
    stage = GateWeave()
    shot = Shot(0, n)
    defaults = stage.params.resolve({})
    measurement = stage.measure(enumerate(frames), shot, defaults)
    for changed in ({}, {"smoothing": 0.8}, {"mode": "tripod"}, {"fit_moves": False}, {"border": "crop"}):
        params = stage.params.resolve(changed)
        whole = stage.analyze(enumerate(frames), shot, params)
        refit = stage.fit(measurement, shot, params)
        assert np.array_equal(whole.intended, refit.intended) and whole.zoom == refit.zoom, changed
        assert np.array_equal(whole.measured, refit.measured) and whole.models == refit.models
    assert GateWeave.splits_analysis


def test_a_large_correction_does_not_carry_the_gate_shading_into_the_picture():
    from restoration.stages.stabilize.weave import Gate

    gate = Gate(0, 0, 8, 0)
    # a splice jump corrected by 17 px downward: output row y shows source row y - 17
    down = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -17.0]])
    exposed = exposed_pixels(down, WIDTH, HEIGHT, gate)
    rows = np.nonzero(exposed.all(axis=1))[0]
    # rows 8..24 uncovered, and rows 25..27 (source rows 8..10: the shading just inside the gate) are filled too
    assert rows.min() == 8 and rows.max() == 8 + 17 + 2, rows
    # a weave-sized correction keeps the frame's own rows next to the gate (they belong there)
    weave = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -1.2]])
    assert np.nonzero(exposed_pixels(weave, WIDTH, HEIGHT, gate).all(axis=1))[0].tolist() == [8]


def test_rounded_gate_corners_are_found_and_never_pasted_into_the_picture():
    from restoration.synth.motion import rounded_gate
    from restoration.stages.stabilize.weave import Gate

    n, jolt = 20, 9
    alpha = rounded_gate(WIDTH, HEIGHT, band=6, radius=40)
    dark = alpha[..., 0] < 0.5
    for seed in range(2):
        picture = scene(130 + seed, WIDTH + 80, HEIGHT + 80)
        track = weave_track(n, seed=131 + seed, sigma=0.8)
        track[jolt, seed] += 18.0  # a splice jump (x, then y): the picture jumps inside the static gate
        frames = [woven(picture, *w, origin=(40, 40)) * alpha + 0.02 * (1 - alpha) for w in track]
        truth = woven(picture, 0.0, 0.0, origin=(40, 40)) * alpha + 0.02 * (1 - alpha)
        pipe = pipeline(frames, {"border": "fill"}, [Shot(0, n)])
        found = pipe.nodes[0].analysis(Shot(0, n)).gate
        sides = Gate(found.left, found.right, found.top, found.bottom)
        # the corners' dark beyond the sides is found, and no more than a little picture with it
        missed = int((dark & ~found.mask(WIDTH, HEIGHT)).sum())
        beyond = int((dark & ~sides.mask(WIDTH, HEIGHT)).sum())
        extra = int((~dark & found.mask(WIDTH, HEIGHT) & ~sides.mask(WIDTH, HEIGHT)).sum())
        assert beyond > 100 and missed <= 0.2 * beyond and extra <= beyond, (seed, missed, beyond, extra)
        # 18 px corrected: the fill must not bring a corner's black into the picture (nor leave the frame's own)
        out = pipe.frame(jolt)
        lost = (out.mean(axis=2) < 0.06) & (truth.mean(axis=2) > 0.15)
        assert lost.sum() <= 2, (seed, int(lost.sum()))


def test_a_vehicle_sway_is_followed_as_smoothly_as_the_shot_says():
    from restoration.synth import motion

    def errors() -> tuple[float, float]:
        rng = np.random.default_rng(17)
        paths, steps = [], []
        for _ in range(30):
            n = 48
            camera, weave = motion.camera_path("vehicle", n, rng), motion.ar1_weave(n, 0.8, rng)
            measured = np.zeros((n, 4))
            measured[:, :2] = camera + weave
            error = intended_path(measured, 0.35)[0][:, :2] - camera
            error -= np.median(error, axis=0)
            paths.append(np.sqrt(np.mean(np.sum(error ** 2, axis=1))))
            steps.append(np.sqrt(np.mean(np.sum(np.diff(error, axis=0) ** 2, axis=1))))
        return float(np.mean(paths)), float(np.mean(steps))

    path, jitter = errors()
    # the best any linear estimator does with the true statistics is 0.69 / 0.18 px (bench/vehicle_bound.py); the
    # smoothing period's own curve left 0.97 / 0.31 px
    assert path < 0.88 and jitter < 0.28, (path, jitter)


def test_a_tilt_that_turns_back_is_not_taken_for_a_steady_acceleration():
    from restoration.synth import motion

    n = 34  # as the bench's city-weave, whose tilt rises for 18 frames and turns back
    t = np.arange(n, dtype=np.float64)
    camera = np.zeros((n, 2))
    camera[:, 1] = np.cumsum(1.3 * np.tanh((18 - t) / 3))
    rng = np.random.default_rng(23)
    errors, models = [], []
    for _ in range(40):
        measured = np.zeros((n, 4))
        measured[:, :2] = camera + motion.ar1_weave(n, 1.5, rng)
        intended, axes = intended_path(measured, 0.35)
        error = intended[:, 1] - camera[:, 1]
        error -= np.polyval(np.polyfit(t, error, 1), t)  # the bench's residual jitter: mean and drift taken out
        errors.append(np.sqrt(np.mean(error ** 2)))
        models.append(axes[1])
    # the parabola through the turn (or the stiffest restricted-likelihood curve, the same parabola) was chosen in
    # 12 of these 40 draws and left 0.93 px; now 0.83 px
    assert not any(m.startswith("accelerating") for m in models), models
    assert np.mean(errors) < 0.88, np.mean(errors)


def test_a_slow_dip_beyond_the_weave_is_kept_and_a_splice_jump_in_it_is_not():
    from restoration.stages.stabilize.weave import find_jolts

    # as Market Street's cable car pitching: the picture held, a fast bounce of 1.2 px, a smooth 10 px dip over 24
    # frames and back, and a 1-3 frame splice jump of 12-25 px
    n = 60
    t = np.arange(n, dtype=np.float64)
    errors, jolt_errors, models = [], [], []
    for seed in range(8):
        rng = np.random.default_rng(200 + seed)
        start = float(rng.uniform(15, 30))
        inside = (t >= start) & (t <= start + 24)
        camera = np.where(inside, -10.0 * np.sin(np.pi * (t - start) / 24) ** 2, 0.0)
        measured = np.zeros((n, 4))
        measured[:, 1] = camera + rng.normal(0, 1.2, n)
        at, length = int(rng.integers(8, n - 12)), int(rng.integers(1, 4))
        measured[at:at + length, 1] += rng.uniform(12, 25) * rng.choice([-1.0, 1.0])
        jolts = find_jolts(measured)
        intended, axes = intended_path(measured, 0.35, measured=~jolts)
        error = intended[:, 1] - camera
        error -= np.median(error)
        errors.append(np.sqrt(np.mean(error ** 2)))
        jolt_errors.append(np.abs(error[at:at + length]).max())
        models.append(axes[1])
    # the still model was centred on a level the dip pulled, and the dip corrected away: 2.86 px off on average
    assert np.mean(errors) < 0.6, (errors, models)
    assert all(m.endswith("+excursion") for m in models), models  # not the smooth curve, which follows the weave too
    # the jump is still corrected onto the camera's path (it left 12-25 px)
    assert max(jolt_errors) < 3.0, jolt_errors
    # weave alone, even strong, is no excursion
    for seed in range(20):
        motion = np.zeros((n, 4))
        motion[:, :2] = weave_track(n, seed=300 + seed, sigma=1.5)[:, :2]
        assert not any("excursion" in m for m in intended_path(motion, 0.35)[1])


def test_a_dip_over_half_the_shot_is_still_taken_as_held_plus_the_dip():
    from restoration.synth import motion

    # the simulator's pitch, 26 of 48 frames long: the held frames are 52-58 % of the shot
    n = 48
    t = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(31)
    errors, models = [], []
    for _ in range(12):
        start = float(rng.uniform(6, 14))
        inside = (t >= start) & (t <= start + 26)
        camera = np.where(inside, 7.0 * np.sin(np.pi * (t - start) / 26) ** 2, 0.0)
        measured = np.zeros((n, 4))
        measured[:, :2] = motion.ar1_weave(n, 0.8, rng)
        measured[:, 1] += camera
        intended, axes = intended_path(measured, 0.35)
        error = intended[:, 1] - camera
        error -= np.median(error)
        errors.append(np.sqrt(np.mean(error ** 2)))
        models.append(axes[1])
    # with 60 % of the shot required held, 5 of these 12 fell back to the smooth curve (0.558 px; now 0.504)
    assert sum(m == "still+excursion" for m in models) >= 10, models
    assert np.mean(errors) < 0.53, errors


def _dip_draws(kind: str, draws: int, n: int, seed: int) -> tuple[float, float, list[str]]:
    """Mean frame-to-frame jitter and RMS of the kept dy path's error, and the dy models, over draws of a held camera
    that dips and returns (the simulator's pitch with its splice jump, a quick dip and slow return, a dip that holds
    at its bottom) or pans and stops, under the simulator's AR(1) weave."""
    from restoration.stages.stabilize.weave import find_jolts
    from restoration.synth import motion

    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    jitters, errors, models = [], [], []
    for _ in range(draws):
        depth = rng.uniform(4, 9) * rng.choice([-1.0, 1.0])
        if kind == "pitch":
            camera = motion.camera_path("pitch", n, rng)[:, 1]
        elif kind == "quick_dip":
            down, up = rng.uniform(3, 6), rng.uniform(14, 24)
            start = rng.uniform(4, n - down - up - 4)
            phase = np.where(t < start + down, (t - start) / down, (start + down + up - t) / up)
            camera = depth * np.sin(0.5 * np.pi * np.clip(phase, 0, 1)) ** 2
        elif kind == "held_dip":
            ease, hold = rng.uniform(4, 8), rng.uniform(12, 20)
            start = rng.uniform(4, n - 2 * ease - hold - 4)
            phase = np.minimum(t - start, start + 2 * ease + hold - t) / ease
            camera = depth * np.sin(0.5 * np.pi * np.clip(phase, 0, 1)) ** 2
        else:  # a tilt that stops
            camera = depth / 10 * np.minimum(t, rng.uniform(12, 30))
        measured = np.zeros((n, 4))
        measured[:, :2] = motion.ar1_weave(n, 0.8, rng)
        measured[:, 1] += camera
        if kind == "pitch":
            at, length = int(rng.integers(8, n - 12)), int(rng.integers(1, 4))
            measured[at:at + length, 1] += rng.uniform(10, 25) * rng.choice([-1.0, 1.0])
        intended, axes = intended_path(measured, 0.35, measured=~find_jolts(measured))
        error = intended[:, 1] - camera
        error -= np.median(error)
        jitters.append(np.sqrt(np.mean(np.diff(error) ** 2)))
        errors.append(np.sqrt(np.mean(error ** 2)))
        models.append(axes[1])
    return float(np.mean(jitters)), float(np.mean(errors)), models


def test_a_dip_is_kept_as_an_eased_dip_and_return_not_with_its_weave():
    # the smooth follower (a period of 0.7 times the run) passed the weave's slow part within the dip:
    # pitch jitter 0.144, a quick dip with a slow return 0.281 / 0.587 px (now 0.122, 0.188 / 0.412)
    jitter, _, models = _dip_draws("pitch", 24, 48, 41)
    assert jitter < 0.133, (jitter, models)
    jitter, error, models = _dip_draws("quick_dip", 24, 48, 42)
    assert jitter < 0.23 and error < 0.5, (jitter, error, models)
    # a dip that holds at its bottom is no eased dip: the follower stays (0.714 px before and 0.719 now; the eased
    # dip forced on it, 0.8-0.9)
    _, error, models = _dip_draws("held_dip", 24, 48, 43)
    assert error < 0.76, (error, models)


def test_a_dip_drawn_as_segments_is_held_plus_the_dip_but_a_tilt_that_stops_stays_segments():
    # in 96 frames, constant-speed segments drew 5 of 16 pitches as a V (now 2)
    jitter, _, models = _dip_draws("pitch", 16, 96, 44)
    assert sum(m.startswith("segments") for m in models) <= 2 and jitter < 0.125, (jitter, models)
    # a tilt that stops within the shot leaves the camera moved: segments explain it, not a held level and a ramp
    for n, seed in ((96, 45), (48, 46)):
        _, error, models = _dip_draws("tilt_stops", 16, n, seed)
        assert sum(m == "segments" for m in models) >= 15 and error < 0.36, (error, models)


def test_a_shallow_dip_with_its_bottom_left_out_is_found():
    from restoration.stages.stabilize import weave
    from restoration.synth import motion

    # frames left out (a splice jolt at the dip's bottom) are frames apart, not neighbours: the run-mean
    # difference's variance is the exact AR(1) one at the frames' times
    times = np.delete(np.arange(48.0), [24, 25, 26])
    covariance = weave.WEAVE_CORRELATION ** np.abs(times[:, None] - times[None, :])
    shares = weave._gapped_shares(weave._gapped_sums(times), 12)
    for start in (0, 18, times.size - 12):
        a = np.full(times.size, -1.0 / (times.size - 12))
        a[start:start + 12] = 1.0 / 12
        assert shares[start] == pytest.approx(a @ covariance @ a, rel=1e-9)
    # a 4 px dip over 18 frames, its 3 bottom frames a jolt: found in 107 of 300 draws when the frames either side
    # of the jolt were taken for neighbours (a variance too large), 136 now; weave alone is found as often as before
    t = np.arange(48.0)
    dip = np.where((t >= 16) & (t <= 34), -4.0 * np.sin(np.pi * (t - 16) / 18) ** 2, 0.0)
    weights = np.ones(48)
    weights[24:27] = 0.0
    found = 0
    for seed in range(300):
        values = dip + motion.ar1_weave(48, 0.8, np.random.default_rng(seed))[:, 1]
        found += weave.find_excursions(values - np.median(values[weights > 0]), weights).any()
    assert found >= 125, found

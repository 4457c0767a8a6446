"""Dust, dirt, hair, lint and blotches (one-frame defects) and persistent vertical line scratches.

Overlays are the RGBA film-damage overlays of FilmDamageSimulator (MIT): the colour is always white and the alpha
channel is the defect's opacity, so an overlay is an opacity map we composite with a dark or a bright defect value
(dirt on the positive prints dark, dirt on the negative prints white).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

OVERLAY_ENV = "FILMRESTORE_DAMAGE_OVERLAYS"
ALPHA_CUT = 0.08        # opacities below this are dropped (ramped, not cut) so the mask is exactly what changed
REFERENCE_HEIGHT = 576  # defect sizes below are for 576-line frames and scale with the frame height

# Scale range (of the overlay's native pixels) per category, chosen so a 576-line frame gets specks of 5-30 px,
# hairs of 75-250 px with 1-3 px thickness, and blotches of 15-60 px.
CATEGORY_SCALE = {
    "dirt": (0.25, 0.6), "dots": (0.08, 0.3), "hair": (0.25, 0.7), "hair-short": (0.3, 0.8), "lint": (0.2, 0.5),
    "scratches": (0.2, 0.5), "smut": (0.08, 0.3), "spots": (0.7, 1.2), "sprinkles": (0.15, 0.4), "stain": (0.1, 0.35),
}
TRANSLUCENT = ("stain", "blotch")  # stains and blotches are partly transparent emulsion damage
PROCEDURAL_KINDS = {"speck": 0.7, "hair": 0.15, "blotch": 0.15}


def default_overlay_dir() -> Path:
    """$FILMRESTORE_DAMAGE_OVERLAYS, else ../shared/data/archival/filmdamage_overlays beside the repository."""
    env = os.environ.get(OVERLAY_ENV)
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "archival" / "filmdamage_overlays"


@dataclass
class OverlayLibrary:
    """Overlay PNGs by category (folder name); opacity maps are read on first use and kept for this library only."""

    directory: Path | None
    files: dict[str, list[Path]]
    note: str
    _alpha: dict[Path, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def scan(cls, directory: Path | None) -> "OverlayLibrary":
        """Find `<directory>/<category>/*.png`; an absent or empty directory gives procedural defects only."""
        if directory is None:
            return cls(None, {}, "procedural only: no overlay directory given")
        directory = Path(directory)
        if not directory.is_dir():
            return cls(directory, {}, f"procedural only: overlay directory {directory} not found")
        files = {}
        for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
            pngs = sorted(sub.glob("*.png"))
            if pngs:
                files[sub.name] = pngs
        if not files:
            return cls(directory, {}, f"procedural only: no <category>/*.png overlays in {directory}")
        return cls(directory, files, f"overlays from {directory} ({sum(map(len, files.values()))} files)")

    def alpha(self, path: Path) -> np.ndarray:
        """Opacity map (H, W) float32 in [0, 1] of one overlay."""
        if path not in self._alpha:
            self._alpha[path] = _read_alpha(path)
        return self._alpha[path]


def _read_alpha(path: Path) -> np.ndarray:
    import av

    from restoration.errors import MediaError

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            rgba = frame.to_ndarray(format="rgba")
    except (av.error.FFmpegError, StopIteration, OSError) as exc:
        raise MediaError(str(path), f"cannot read damage overlay ({exc})") from None
    return rgba[..., 3].astype(np.float32) / 255.0


@dataclass
class Defect:
    """One dust/dirt/hair/blotch defect placed on the film frame (canvas coordinates)."""

    frames: tuple[int, ...]
    source: str           # overlay category/file name, or 'procedural:<kind>'
    x: int                # top-left of the opacity patch on the canvas
    y: int
    opacity: float
    value: tuple[float, float, float]
    bright: bool
    scale: float
    angle_deg: float
    alpha: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        h, w = self.alpha.shape
        return {"frames": list(self.frames), "source": self.source, "x": self.x, "y": self.y, "width": w,
                "height": h, "opacity": round(self.opacity, 4), "value": [round(v, 4) for v in self.value],
                "bright": self.bright, "scale": round(self.scale, 4), "angle_deg": round(self.angle_deg, 2)}


def ramp_alpha(alpha: np.ndarray, cut: float = ALPHA_CUT) -> np.ndarray:
    """Drop faint opacity continuously: (a - cut) / (1 - cut), so the defect ends where its mask ends."""
    return np.clip((alpha - cut) / (1.0 - cut), 0.0, 1.0).astype(np.float32)


def _crop_to_content(alpha: np.ndarray, level: float = 0.0) -> np.ndarray | None:
    rows = np.flatnonzero((alpha > level).any(axis=1))
    cols = np.flatnonzero((alpha > level).any(axis=0))
    if rows.size == 0:
        return None
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def transform_patch(alpha: np.ndarray, scale: float, angle_deg: float, flip: bool) -> np.ndarray | None:
    """Scale, mirror and rotate an opacity map, then ramp and crop it to what is left."""
    patch = _crop_to_content(alpha, 0.02)
    if patch is None:
        return None
    if flip:
        patch = patch[:, ::-1]
    h, w = patch.shape
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(np.ascontiguousarray(patch), size, interpolation=interpolation)
    h, w = patch.shape
    diagonal = int(math.ceil(math.hypot(w, h))) + 2
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, 1.0)
    matrix[:, 2] += ((diagonal - w) / 2, (diagonal - h) / 2)
    patch = cv2.warpAffine(patch, matrix, (diagonal, diagonal), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return _crop_to_content(ramp_alpha(np.clip(patch, 0.0, 1.0)))


def procedural_patch(kind: str, size_factor: float, rng: np.random.Generator) -> np.ndarray | None:
    """Opacity map of a procedural speck (clump of 1-3 soft blobs), hair (thin wandering curve) or blotch."""
    if kind == "speck":
        radius = math.exp(rng.uniform(math.log(0.7), math.log(3.5))) * size_factor
        blobs = int(rng.integers(1, 4))
        half = int(math.ceil(5 * radius)) + 2
        yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
        alpha = np.zeros_like(xx)
        for _ in range(blobs):
            cx, cy = rng.normal(0.0, 0.8 * radius, size=2)
            r = radius * rng.uniform(0.5, 1.0)
            alpha += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        alpha = np.clip(1.6 * alpha, 0.0, 1.0)
    elif kind == "hair":
        length = rng.uniform(25.0, 130.0) * size_factor
        thickness = rng.uniform(0.7, 1.8) * size_factor
        supersample = 4
        steps = max(2, int(length))
        heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0.0, 0.08, steps))
        points = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], axis=1), axis=0)
        points -= points.min(axis=0)
        pad = int(math.ceil(2 * thickness)) + 2
        w, h = (points.max(axis=0) + 2 * pad + 1).astype(int)
        canvas = np.zeros((h * supersample, w * supersample), dtype=np.uint8)
        poly = np.round((points + pad) * supersample * 16).astype(np.int32)  # 4 fractional bits
        cv2.polylines(canvas, [poly], False, 255, max(1, int(round(thickness * supersample))), cv2.LINE_AA, 4)
        alpha = cv2.resize(canvas.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    elif kind == "blotch":
        radius = rng.uniform(5.0, 18.0) * size_factor
        half = int(math.ceil(1.6 * radius)) + 2
        noise = cv2.GaussianBlur(rng.standard_normal((2 * half + 1, 2 * half + 1)).astype(np.float32), (0, 0),
                                 max(1.0, radius / 4))
        noise /= max(float(noise.std()), 1e-6)
        yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
        ellipse = np.sqrt((xx / rng.uniform(0.6, 1.0)) ** 2 + (yy / rng.uniform(0.6, 1.0)) ** 2) / radius
        alpha = np.clip((1.0 - ellipse + 0.25 * noise) * 3.0, 0.0, 1.0)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.8)
    else:
        raise ValueError(f"unknown procedural defect kind {kind!r}")
    return _crop_to_content(ramp_alpha(alpha.astype(np.float32)))


def plan_dust(n_frames: int, canvas_size: tuple[int, int], settings, library: OverlayLibrary,
              rng: np.random.Generator) -> list[Defect]:
    """All one-frame (occasionally two-frame) defects of a clip, placed uniformly on the film frame."""
    width, height = canvas_size
    size_factor = height / REFERENCE_HEIGHT * settings.dust_size_scale
    categories = [c for c in library.files if settings.dust_category_weights.get(c, 0.0) > 0]
    weights = np.array([settings.dust_category_weights[c] for c in categories], dtype=np.float64)
    procedural_share = settings.dust_procedural_fraction if categories else 1.0
    kinds = list(PROCEDURAL_KINDS)
    kind_weights = np.array([PROCEDURAL_KINDS[k] for k in kinds])
    expected = settings.dust_density * width * height / 1e6
    defects: list[Defect] = []
    for t in range(n_frames):
        for _ in range(int(rng.poisson(expected))):
            flip = bool(rng.random() < 0.5)
            angle = float(rng.uniform(0.0, 360.0))
            if rng.random() < procedural_share:
                kind = kinds[int(rng.choice(len(kinds), p=kind_weights / kind_weights.sum()))]
                scale = size_factor
                alpha = procedural_patch(kind, size_factor, rng)
                source = f"procedural:{kind}"
                translucent = kind in TRANSLUCENT
            else:
                category = categories[int(rng.choice(len(categories), p=weights / weights.sum()))]
                path = library.files[category][int(rng.integers(len(library.files[category])))]
                low, high = CATEGORY_SCALE.get(category, (0.1, 0.5))
                scale = math.exp(rng.uniform(math.log(low), math.log(high))) * size_factor
                alpha = transform_patch(library.alpha(path), scale, angle, flip)
                source = f"{category}/{path.name}"
                translucent = category in TRANSLUCENT
            bright = bool(rng.random() < settings.dust_bright_fraction)
            base = rng.uniform(0.85, 1.0) if bright else rng.uniform(0.0, 0.12)
            value = tuple(float(v) for v in np.clip(base + rng.uniform(-0.02, 0.02, size=3), 0.0, 1.0))
            opacity = float(rng.uniform(0.35, 0.75) if translucent else rng.uniform(0.75, 1.0))
            two = bool(rng.random() < settings.dust_two_frame_fraction) and t + 1 < n_frames
            if alpha is None:
                continue
            h, w = alpha.shape
            x = int(rng.integers(-w // 2, width - w // 2 + 1))
            y = int(rng.integers(-h // 2, height - h // 2 + 1))
            frames = (t, t + 1) if two else (t,)
            defects.append(Defect(frames, source, x, y, opacity, value, bright, scale, angle, alpha))
    if settings.blotch_rate > 0:
        defects += plan_blotches(n_frames, canvas_size, settings, library, rng)
    return defects


BLOTCH_OVERLAYS = ("stain", "smut", "dirt")  # overlay categories that scale up into convincing large blotches


def blotch_shape(area: float, rng: np.random.Generator) -> np.ndarray:
    """Opacity map of a solid blotch of about `area` px²: an irregular blob with a soft, ragged edge, its density
    uneven inside (some are webbed: holes and veins where the emulsion lifted)."""
    radius = math.sqrt(area / math.pi)
    half = int(math.ceil(1.5 * radius)) + 3
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    stretch = rng.uniform(0.55, 1.0)
    turn = rng.uniform(0.0, math.pi)
    u = (xx * math.cos(turn) + yy * math.sin(turn)) / stretch
    v = (-xx * math.sin(turn) + yy * math.cos(turn)) * stretch
    ellipse = np.sqrt(u * u + v * v) / radius
    coarse = cv2.GaussianBlur(rng.standard_normal(xx.shape).astype(np.float32), (0, 0), max(1.0, radius / 3))
    coarse /= max(float(coarse.std()), 1e-6)
    alpha = np.clip((1.0 - ellipse + 0.3 * coarse) * max(2.0, radius / 4), 0.0, 1.0)
    if rng.random() < 0.4:  # webbed
        fine = cv2.GaussianBlur(rng.standard_normal(xx.shape).astype(np.float32), (0, 0), max(1.0, radius / 12))
        fine /= max(float(fine.std()), 1e-6)
        alpha *= np.clip(0.5 + 0.8 * np.abs(fine), 0.0, 1.0)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    return _crop_to_content(ramp_alpha(alpha)) if alpha.max() > ALPHA_CUT else np.ones((3, 3), np.float32)


def plan_blotches(n_frames: int, canvas_size: tuple[int, int], settings, library: OverlayLibrary,
                  rng: np.random.Generator) -> list[Defect]:
    """Large one- or two-frame blotches, log-uniform in area from `blotch_min_area_px` to `blotch_max_fraction` of
    the frame, anywhere (frame edges included): solid blobs, or stain/smut/dirt overlays scaled up."""
    width, height = canvas_size
    low = settings.blotch_min_area_px * (height / REFERENCE_HEIGHT) ** 2
    high = max(low, settings.blotch_max_fraction * width * height)
    overlays = [c for c in BLOTCH_OVERLAYS if library.files.get(c)]
    defects: list[Defect] = []
    for t in range(n_frames):
        for _ in range(int(rng.poisson(settings.blotch_rate))):
            area = math.exp(rng.uniform(math.log(low), math.log(high)))
            angle = float(rng.uniform(0.0, 360.0))
            flip = bool(rng.random() < 0.5)
            alpha = None
            if overlays and rng.random() < 0.5:
                category = overlays[int(rng.integers(len(overlays)))]
                path = library.files[category][int(rng.integers(len(library.files[category])))]
                native = library.alpha(path)
                covered = max(float((native > 0.1).sum()), 1.0)
                scale = math.sqrt(area / covered)
                alpha = transform_patch(native, scale, angle, flip)
                source = f"blotch:{category}/{path.name}"
            if alpha is None:
                scale = 1.0
                alpha = blotch_shape(area, rng)
                source = "procedural:large-blotch"
            bright = bool(rng.random() < settings.dust_bright_fraction)
            base = rng.uniform(0.8, 1.0) if bright else rng.uniform(0.0, 0.2)
            value = tuple(float(v) for v in np.clip(base + rng.uniform(-0.03, 0.03, size=3), 0.0, 1.0))
            opacity = float(rng.uniform(0.6, 1.0))
            h, w = alpha.shape
            # anywhere, a third of it may hang over the frame edge
            x = int(rng.integers(-w // 3, max(width - 2 * w // 3, -w // 3) + 1))
            y = int(rng.integers(-h // 3, max(height - 2 * h // 3, -h // 3) + 1))
            two = bool(rng.random() < settings.blotch_two_frame_fraction) and t + 1 < n_frames
            defects.append(Defect((t, t + 1) if two else (t,), source, x, y, opacity, value, bright, scale, angle,
                                  alpha))
    return defects


def composite(frame: np.ndarray, coverage: np.ndarray, alpha: np.ndarray, x: int, y: int,
              value: np.ndarray) -> None:
    """In place: frame += alpha * (value - frame) over the patch at (x, y); coverage accumulates the opacity."""
    height, width = frame.shape[:2]
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x]
    region = frame[y0:y1, x0:x1]
    region += a[..., None] * (value[None, None, :] - region)
    cover = coverage[y0:y1, x0:x1]
    cover += a * (1.0 - cover)


def apply_dust(frame: np.ndarray, defects: list[Defect], t: int) -> np.ndarray:
    """Composite frame t's defects in place; return their combined opacity (H, W)."""
    coverage = np.zeros(frame.shape[:2], dtype=np.float32)
    for defect in defects:
        if t in defect.frames:
            composite(frame, coverage, defect.alpha * np.float32(defect.opacity), defect.x, defect.y,
                      np.asarray(defect.value, dtype=np.float32))
    return coverage


@dataclass
class Scratch:
    """A vertical line scratch running through a span of frames on the film frame."""

    start: int
    length: int
    x: np.ndarray         # (length,) centre column at the frame's middle row, per frame of the span
    slope: float          # px of horizontal travel per row (scratches are near-vertical, not exactly)
    width: float          # Gaussian profile std, px (>= 0.5: the scanner's optics spread even a hairline)
    strength: float
    bright: bool

    def to_dict(self) -> dict:
        return {"start": self.start, "length": self.length, "x": [round(float(v), 3) for v in self.x],
                "slope": round(self.slope, 6), "width": round(self.width, 3), "strength": round(self.strength, 3),
                "bright": self.bright}


def plan_scratches(n_frames: int, canvas_size: tuple[int, int], settings, rng: np.random.Generator) -> list[Scratch]:
    """`scratch_count` scratches, each over 50-100 % of the clip (>= 10 frames), drifting slowly sideways."""
    width, height = canvas_size
    size_factor = height / REFERENCE_HEIGHT
    scratches = []
    for _ in range(settings.scratch_count):
        length = int(min(n_frames, max(10, round(n_frames * rng.uniform(0.5, 1.0)))))
        start = int(rng.integers(0, n_frames - length + 1))
        x0 = rng.uniform(0.05, 0.95) * width
        drift = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, settings.scratch_drift_px, length - 1))])
        scratches.append(Scratch(start, length, x0 + drift, float(rng.uniform(-0.002, 0.002)),
                                 float(max(0.5, rng.uniform(0.4, 1.1) * size_factor)), float(rng.uniform(0.3, 0.8)),
                                 bool(rng.random() < settings.scratch_bright_fraction)))
    return scratches


def apply_scratches(frame: np.ndarray, scratches: list[Scratch], t: int, rng: np.random.Generator) -> np.ndarray:
    """Composite the scratches present at frame t in place; return their combined opacity (H, W)."""
    height, width = frame.shape[:2]
    coverage = np.zeros((height, width), dtype=np.float32)
    rows = np.arange(height, dtype=np.float32)
    for scratch in scratches:
        if not scratch.start <= t < scratch.start + scratch.length:
            continue
        centre = scratch.x[t - scratch.start] + scratch.slope * (rows - height / 2)
        # the scratch's density varies along its length (the scraping edge's pressure changes)
        along = cv2.GaussianBlur(rng.standard_normal((height, 1)).astype(np.float32), (1, 0), 20.0)[:, 0]
        along = np.clip(1.0 + 0.3 * along / max(float(along.std()), 1e-6), 0.3, 1.3)
        reach = 2.0 * scratch.width + 1.0
        x0 = max(int(math.floor(centre.min() - reach)), 0)
        x1 = min(int(math.ceil(centre.max() + reach)) + 1, width)
        if x0 >= x1:
            continue
        cols = np.arange(x0, x1, dtype=np.float32)
        d = cols[None, :] - centre[:, None]
        profile = ramp_alpha(np.exp(-d * d / (2 * scratch.width ** 2)), math.exp(-2.0))  # ends at 2 sigma
        alpha = np.clip(scratch.strength * along[:, None] * profile, 0.0, 1.0).astype(np.float32)
        value = np.full(3, 1.0 if scratch.bright else 0.0, dtype=np.float32)
        composite(frame, coverage, alpha, x0, 0, value)
    return coverage

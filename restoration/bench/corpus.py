"""The benchmark corpus: fixed, seeded clips built by the simulator from the clean test media, cached on disk.

Per stage the clips carry the damage that stage repairs (see CLIP_SPECS). Reference clips have exact ground truth;
the old film's cleanest stretch is a no-reference case. Everything is quantized to 16 bits once built, so a
cached and a fresh corpus are the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from restoration.errors import RestorationError

CORPUS_VERSION = 1
SEED = 1895  # the Lumières' year; any fixed number would do
STAGES = ("dust", "stabilize", "deflicker", "denoise", "color", "sr")
CHAIN = "chain"  # every stage but sr in the fixed order, on a clip with every damage
DATA_ENV = "FILMRESTORE_DATA"

# The old film's cleanest stretch: lowest mean spike-detection index (pixels differing from both neighbours by
# > 30/255 in the same direction) over a 30-frame window of the 150 frames shipped (frames 1062-1091).
FILM_FOLDER = "archival/rtn_test_data_1_002_f1000-1149"
FILM_FIRST = 1062
FILM_FRAMES = 30
OVERLAY_FOLDER = "archival/filmdamage_overlays"


# Colour fade families (restoration.synth.fades): each drawn afresh per seed, on clean media taken in turn.
FADE_FAMILIES = ("dye", "levels", "magenta", "scanner", "clean", "toned")
FADED_FAMILIES = ("dye", "levels", "magenta", "scanner")
FAMILY_SEEDS = 3
FAMILY_SOURCES = ("city", "still:Set14/img_012", "still:Set5/baby", "still:Set14/img_011", "still:Set14/img_007")

# Dust clips drawn afresh per seed: large blotches (one and two frames, up to a quarter of the frame) over moving
# and panned picture, and fast limbs (bright over a dark scene, dark and bright over texture).
DUST_SEEDS = 3
BLOTCH_SOURCES = (("city", {}), ("still:Set14/img_002", {"pan_px_per_frame": (1.5, 0.5)}),
                  ("still:Set14/img_007", {"pan_px_per_frame": (-1.0, 0.0)}))
BLOTCH_SETTINGS = {"blotch_rate": 0.3, "dust_two_frame_fraction": 0.25}
DARK_SCENE_GAIN = 0.22  # a dark scene (a coat, a night street): the picture scaled to about a quarter of its level


class DataMissing(RestorationError):
    """The benchmark's test media are not where it looked."""


@dataclass(frozen=True)
class Profile:
    """How much of the corpus a run uses: `full` for the report, `quick` for a < 5 min check, `tiny` for tests."""

    name: str
    video_frames: int
    still_frames: int
    film_frames: int
    crop: tuple[int, int] | None     # (width, height) centre crop of every source before simulation
    film_crop: tuple[int, int] | None
    sr_sets: tuple[str, ...]
    sr_video_frames: int
    sr_images: int | None            # at most this many images per still set


PROFILES: dict[str, Profile] = {
    "full": Profile("full", 34, 16, 30, None, None, ("Set5", "Set14", "Vid4-city"), 34, None),
    "quick": Profile("quick", 6, 6, 6, (352, 288), (352, 288), ("Set5", "Vid4-city"), 2, 3),
    "tiny": Profile("tiny", 5, 5, 5, (112, 96), (96, 80), ("Set5",), 2, 2),
}


@dataclass(frozen=True)
class ClipSpec:
    """One corpus clip: where its clean frames come from and which damage (with which settings) it gets."""

    name: str
    stage: str
    role: str                       # what it tests, read by the scoring (e.g. 'damaged', 'clean', 'film')
    source: str                     # 'city', 'still:<set>/<file>', 'film' or 'sr:<set>'
    damage: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    arms: int = 0                   # swinging arms drawn into the picture before the damage (restoration.synth.figures)
    arms_bright_over_dark: bool = False  # the arms all bright and the scene darkened (DARK_SCENE_GAIN)
    fade_family: str = ""           # a colour fade family (restoration.synth.fades) instead of the simulator's damage
    family_seed: int = 0


def blotch_spec(k: int) -> ClipSpec:
    """The blotch clip of seed `k` (the bench holds seeds 0 .. DUST_SEEDS - 1; a check may draw more)."""
    source, settings = BLOTCH_SOURCES[k % len(BLOTCH_SOURCES)]
    return ClipSpec(f"blotches-{k}", "dust", "damaged", source, ("dust", "scratches", "grain"),
                    {**BLOTCH_SETTINGS, **settings},
                    note=f"{source} + dust, 0.3 large blotches a frame (2 000 px² up to a quarter of the frame, a "
                         f"quarter of them on two frames, edges included), scratches, grain, seed {k}")


# Roles: dust  damaged | clean | moving | film;  stabilize  weave | film;  deflicker  flicker | flicker-free | film;
# denoise  grain | film;  color  fade | bw | film | fade:<family> | no-harm:<family>;  sr  sr-stills | sr-video;
# chain  all | film.
CLIP_SPECS: tuple[ClipSpec, ...] = (
    ClipSpec("city-dust", "dust", "damaged", "city", ("dust", "scratches", "grain"),
             note="Vid4 city (camera move) + dust, dirt, hair, 2 scratches, default grain"),
    ClipSpec("barbara-pan-dust", "dust", "damaged", "still:Set14/img_002", ("dust", "scratches", "grain"),
             {"pan_px_per_frame": (1.5, 0.5), "dust_density": 40.0},
             note="Set14 barbara panned 1.5, 0.5 px/frame + denser dust, scratches, grain"),
    ClipSpec("city-clean", "dust", "clean", "city", ("grain",),
             note="Vid4 city, grain only: every changed pixel is a false repair"),
    *(ClipSpec(f"city-arms-{k}", "dust", "moving", "city", ("grain",), arms=10,
               note=f"Vid4 city + 10 arms swinging fast in front of it (hands 5-40 px a frame, dark and bright, "
                    f"motion-blurred), grain only: every changed pixel is a false repair, and those on the arms are "
                    f"motion eaten; seed {k}")
      for k in range(DUST_SEEDS)),
    *(ClipSpec(f"dark-limbs-{k}", "dust", "moving", "city", ("grain",), arms=10, arms_bright_over_dark=True,
               note=f"Vid4 city darkened to a night scene + 10 bright motion-blurred arms swinging fast, seed {k}")
      for k in range(DUST_SEEDS)),
    *(blotch_spec(k) for k in range(DUST_SEEDS)),
    ClipSpec("film", "dust", "film", "film", note="real old film, no reference"),

    ClipSpec("barbara-weave", "stabilize", "weave", "still:Set14/img_002", ("weave",),
             note="Set14 barbara, locked-off camera + gate weave (1.5 px, 0.15°)"),
    ClipSpec("monarch-pan-weave", "stabilize", "weave", "still:Set14/img_011", ("weave",),
             {"pan_px_per_frame": (2.0, 0.5)}, note="Set14 monarch, intended pan 2, 0.5 px/frame + gate weave"),
    ClipSpec("city-weave", "stabilize", "weave", "city", ("weave",),
             note="Vid4 city (its own camera move is intended) + gate weave"),
    ClipSpec("film", "stabilize", "film", "film", note="real old film (locked-off camera, real weave)"),

    ClipSpec("city-flicker", "deflicker", "flicker", "city", ("flicker",),
             note="Vid4 city + global and low-frequency local flicker"),
    ClipSpec("flowers-pan-flicker", "deflicker", "flicker", "still:Set14/img_007", ("flicker",),
             {"pan_px_per_frame": (1.0, 0.0), "flicker_gain_sigma": 0.06},
             note="Set14 flowers panned 1 px/frame + stronger flicker"),
    ClipSpec("city-grain", "deflicker", "flicker-free", "city", ("grain",),
             note="Vid4 city, grain only: deflicker must not lower PSNR (≤ 0.2 dB)"),
    ClipSpec("film", "deflicker", "film", "film", note="real old film, no reference"),

    ClipSpec("city-grain", "denoise", "grain", "city", ("grain",), {"grain_sigma": 0.03},
             note="Vid4 city + film grain σ 0.03 midtones, size 0.8 px"),
    ClipSpec("barbara-pan-grain", "denoise", "grain", "still:Set14/img_002", ("grain",),
             {"pan_px_per_frame": (1.0, 0.5), "grain_sigma": 0.05, "grain_size": 1.2},
             note="Set14 barbara panned 1, 0.5 px/frame + coarse heavy grain σ 0.05, size 1.2 px"),
    ClipSpec("film", "denoise", "film", "film", note="real old film, no reference"),

    ClipSpec("city-fade", "color", "fade", "city", ("fade",), {"fade_strength": 0.5},
             note="Vid4 city + dye fade, strength 0.5 drifting ±15 %"),
    ClipSpec("pepper-pan-fade-strong", "color", "fade", "still:Set14/img_012", ("fade",),
             {"pan_px_per_frame": (1.0, 0.0), "fade_strength": 0.9}, note="Set14 peppers panned + strong fade 0.9"),
    ClipSpec("baby-pan-fade-mild", "color", "fade", "still:Set5/baby", ("fade",),
             {"pan_px_per_frame": (0.0, 1.0), "fade_strength": 0.25}, note="Set5 baby panned + mild fade 0.25"),
    ClipSpec("bridge-bw", "color", "bw", "still:Set14/img_003", ("grain",), {"pan_px_per_frame": (1.0, 0.0)},
             note="Set14 bridge (black-and-white) panned + monochrome grain: must stay neutral"),
    ClipSpec("film", "color", "film", "film", note="real old film (black-and-white), no reference"),
    *(ClipSpec(f"{family}-{k}", "color", ("fade:" if family in FADED_FAMILIES else "no-harm:") + family,
               FAMILY_SOURCES[(i + k) % len(FAMILY_SOURCES)], fade_family=family, family_seed=k,
               note=f"fade family '{family}', seed {k}, on {FAMILY_SOURCES[(i + k) % len(FAMILY_SOURCES)]}")
      for i, family in enumerate(FADE_FAMILIES) for k in range(FAMILY_SEEDS)),

    ClipSpec("city-all", CHAIN, "all", "city", ("dust", "scratches", "grain", "flicker", "weave", "fade"),
             note="Vid4 city with every damage: dust, scratches, grain, flicker, weave, fade"),
    ClipSpec("film", CHAIN, "film", "film", note="real old film, no reference"),

    ClipSpec("Set5", "sr", "sr-stills", "sr:Set5", note="Set5 GT with the shipped bicubic ×4 LR"),
    ClipSpec("Set14", "sr", "sr-stills", "sr:Set14", note="Set14 GT with the shipped bicubic ×4 LR"),
    ClipSpec("Vid4-city", "sr", "sr-video", "sr:Vid4-city", note="Vid4 city GT with its bicubic ×4 LR (BI)"),
)


@dataclass
class Clip:
    """A built corpus clip: what the methods get (`degraded`), the ground truth and what scoring needs."""

    name: str
    stage: str
    role: str
    note: str
    degraded: list[np.ndarray]
    truth: list[np.ndarray] | None
    defect_masks: list[np.ndarray] | None = None   # dust, dirt, hair, blotch pixels (degraded coordinates)
    scratch_masks: list[np.ndarray] | None = None  # line scratch pixels
    figure_masks: list[np.ndarray] | None = None   # moving figures (part of the truth) that must be left alone
    grain: list[np.ndarray] | None = None
    weave: np.ndarray | None = None
    pan: np.ndarray | None = None
    stills: bool = False            # frames are independent images of different sizes (SR sets)
    labels: list[str] = field(default_factory=list)
    scale: int = 1
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def damage_masks(self) -> list[np.ndarray] | None:
        """Every defect pixel, dust and scratches together."""
        parts = [m for m in (self.defect_masks, self.scratch_masks) if m is not None]
        if not parts:
            return None
        return [np.logical_or.reduce([p[i] for p in parts]) for i in range(len(self.degraded))]

    @property
    def reference(self) -> bool:
        return self.truth is not None

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.degraded[0].shape[:2]
        return w, h

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for the results file."""
        out_w, out_h = self.truth[0].shape[1::-1] if self.truth else self.size
        return {"clip": self.name, "role": self.role, "note": self.note, "frames": len(self.degraded),
                "size": list(self.size), "truth_size": [int(out_w), int(out_h)], "reference": self.reference,
                "scale": self.scale, **({"labels": self.labels} if self.labels else {}), **self.info}


# ------------------------------------------------------------------------------------------------------------
# data


def default_data_dir(repo_root: Path | None = None) -> Path:
    """$FILMRESTORE_DATA, else ../shared/data beside the repository."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    root = repo_root or Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "data"


def check_data(data: Path) -> None:
    """Raise DataMissing naming the folder when the test media are not there."""
    if not Path(data).is_dir():
        raise DataMissing(str(data), f"benchmark data folder not found (give --data DIR or set {DATA_ENV}); "
                                     "the benchmark needs the test media, the product does not")


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataMissing(str(path), "benchmark data missing")
    return path


def read_rgb(path: Path) -> np.ndarray:
    """8- or 16-bit PNG as float32 RGB [0, 1]; a grey image becomes three equal channels."""
    import cv2

    image = cv2.imread(str(_need(path)), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataMissing(str(path), "unreadable image")
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    else:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    return image.astype(np.float32) / np.float32(scale)


def centre_crop(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return frame
    w, h = size
    fh, fw = frame.shape[:2]
    w, h = min(w, fw), min(h, fh)
    y0, x0 = (fh - h) // 2, (fw - w) // 2
    return np.ascontiguousarray(frame[y0:y0 + h, x0:x0 + w])


def _sorted_pngs(folder: Path) -> list[Path]:
    files = sorted(_need(folder).glob("*.png"))
    if not files:
        raise DataMissing(str(folder), "no PNG frames")
    return files


def load_city(data: Path, frames: int, crop: tuple[int, int] | None) -> list[np.ndarray]:
    return [centre_crop(read_rgb(p), crop) for p in _sorted_pngs(data / "Vid4" / "city" / "GT")[:frames]]


def load_film(data: Path, frames: int, crop: tuple[int, int] | None) -> list[np.ndarray]:
    folder = data / FILM_FOLDER
    paths = [_need(folder / f"{FILM_FIRST + i}.png") for i in range(frames)]
    return [centre_crop(read_rgb(p), crop) for p in paths]


def load_still(data: Path, ref: str, crop: tuple[int, int] | None) -> np.ndarray:
    set_name, image = ref.split("/", 1)
    return centre_crop(read_rgb(data / set_name / "GT" / f"{image}.png"), crop)


def load_sr_set(data: Path, name: str, profile: Profile) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(low-res frames, ground truth, labels) of an SR set with the shipped ×4 LR."""
    if name == "Vid4-city":
        gt_dir, lr_dir = data / "Vid4" / "city" / "GT", data / "Vid4" / "city" / "LRx4"
        gt_paths = _sorted_pngs(gt_dir)[:profile.sr_video_frames]
        lr_paths = [_need(lr_dir / p.name) for p in gt_paths]
    else:
        gt_paths = _sorted_pngs(data / name / "GT")[:profile.sr_images]
        lr_paths = [_need(data / name / "LRx4" / p.name) for p in gt_paths]
    return [read_rgb(p) for p in lr_paths], [read_rgb(p) for p in gt_paths], [p.stem for p in gt_paths]


# ------------------------------------------------------------------------------------------------------------
# building and caching


def specs_for(stage: str, profile: Profile | None = None) -> list[ClipSpec]:
    """The clip specs of one stage (SR sets limited to the profile's)."""
    return [s for s in CLIP_SPECS if s.stage == stage
            and (profile is None or not s.source.startswith("sr:") or s.source[3:] in profile.sr_sets)]


def _seed_for(spec: ClipSpec) -> int:
    digest = hashlib.sha256(f"{SEED}:{spec.stage}:{spec.name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _quantize(frames: Sequence[np.ndarray] | None) -> list[np.ndarray] | None:
    if frames is None:
        return None
    return [np.round(np.clip(f, 0.0, 1.0) * 65535.0).astype(np.uint16).astype(np.float32) / np.float32(65535.0)
            for f in frames]


def build_clip(spec: ClipSpec, data: Path, profile: Profile) -> Clip:
    """Build one clip from the clean media (no cache)."""
    from restoration.synth import DamageSettings, simulate
    from restoration.synth.figures import add_arms

    if spec.source.startswith("sr:"):
        lr, gt, labels = load_sr_set(data, spec.source[3:], profile)
        scale = gt[0].shape[0] // lr[0].shape[0]
        return Clip(spec.name, spec.stage, spec.role, spec.note, _quantize(lr), _quantize(gt), stills=spec.role ==
                    "sr-stills", labels=labels, scale=scale)
    if spec.source == "film":
        frames = load_film(data, profile.film_frames, profile.film_crop)
        return Clip(spec.name, spec.stage, spec.role, spec.note, _quantize(frames), None,
                    info={"source": f"{FILM_FOLDER}/{FILM_FIRST}-{FILM_FIRST + len(frames) - 1}.png"})
    if spec.source == "city":
        frames = load_city(data, profile.video_frames, profile.crop)
    elif spec.source.startswith("still:"):
        frames = [load_still(data, spec.source[6:], profile.crop)] * profile.still_frames
    else:
        raise ValueError(f"clip {spec.name}: unknown source {spec.source!r}")
    if spec.fade_family:
        from restoration.synth.fades import fade_family

        seed = _seed_for(spec)
        degraded, truth = fade_family(frames, spec.fade_family, seed)
        return Clip(spec.name, spec.stage, spec.role, spec.note, _quantize(degraded), _quantize(truth),
                    info={"fade_family": spec.fade_family, "seed": seed})
    figure_masks = None
    if spec.arms:
        if any(d in spec.damage for d in ("weave", "blur")) or spec.settings.get("pan_px_per_frame"):
            raise ValueError(f"clip {spec.name}: arms are drawn in frame coordinates, so no weave, pan or blur")
        if spec.arms_bright_over_dark:
            frames = [np.asarray(f, np.float32) * np.float32(DARK_SCENE_GAIN) for f in frames]
        frames, figure_masks = add_arms(frames, spec.arms, _seed_for(spec),
                                        bright_share=1.0 if spec.arms_bright_over_dark else None)
    settings = DamageSettings.from_dict(dict(spec.settings))
    synth = simulate(frames, spec.damage, seed=_seed_for(spec), settings=settings,
                     overlay_dir=data / OVERLAY_FOLDER)
    info = {"damage": list(spec.damage), "seed": _seed_for(spec), "settings": dict(spec.settings),
            **({"arms": spec.arms} if spec.arms else {})}
    return Clip(spec.name, spec.stage, spec.role, spec.note, _quantize(synth.degraded), _quantize(synth.truth),
                defect_masks=synth.defect_masks, scratch_masks=synth.scratch_masks, figure_masks=figure_masks,
                grain=None if synth.grain is None else [g.astype(np.float16).astype(np.float32) for g in synth.grain],
                weave=synth.weave,
                pan=synth.pan if synth.pan is not None and np.any(synth.pan) else None, info=info)


def _simulator_fingerprint() -> str:
    """Hash of the simulator's source, so a changed simulator rebuilds the cached corpus."""
    import restoration.synth as synth

    digest = hashlib.sha256()
    for path in sorted(Path(synth.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(spec: ClipSpec, profile: Profile) -> str:
    """Hash of everything a clip depends on: spec, profile, seed, corpus version and the simulator (defaults and
    code)."""
    from restoration.synth import DamageSettings

    payload = {"version": CORPUS_VERSION, "seed": SEED, "spec": asdict(spec), "profile": asdict(profile),
               "defaults": DamageSettings().to_dict(), "simulator": _simulator_fingerprint()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()[:16]


def _save(clip: Clip, path: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for key in ("degraded", "truth", "defect_masks", "scratch_masks", "figure_masks", "grain"):
        frames = getattr(clip, key)
        for i, frame in enumerate(frames or []):
            if key.endswith("_masks"):
                arrays[f"{key}_{i:04d}"] = frame.astype(bool)
            elif key == "grain":
                arrays[f"{key}_{i:04d}"] = frame.astype(np.float16)
            else:
                arrays[f"{key}_{i:04d}"] = np.round(frame * 65535.0).astype(np.uint16)
    for key in ("weave", "pan"):
        if getattr(clip, key) is not None:
            arrays[key] = np.asarray(getattr(clip, key))
    meta = {"name": clip.name, "stage": clip.stage, "role": clip.role, "note": clip.note, "stills": clip.stills,
            "labels": clip.labels, "scale": clip.scale, "info": clip.info}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)


def _load(path: Path) -> Clip:
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())

        def frames(key: str, convert: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray] | None:
            names = sorted(k for k in z.files if k.startswith(key + "_"))
            return [convert(z[k]) for k in names] if names else None

        as_float = (lambda a: a.astype(np.float32) / np.float32(65535.0))
        as_mask = (lambda a: a.astype(bool))
        return Clip(meta["name"], meta["stage"], meta["role"], meta["note"], frames("degraded", as_float),
                    frames("truth", as_float), defect_masks=frames("defect_masks", as_mask),
                    scratch_masks=frames("scratch_masks", as_mask), figure_masks=frames("figure_masks", as_mask),
                    grain=frames("grain", lambda a: a.astype(np.float32)),
                    weave=z["weave"] if "weave" in z.files else None, pan=z["pan"] if "pan" in z.files else None,
                    stills=meta["stills"], labels=meta["labels"], scale=meta["scale"], info=meta["info"])


def load_corpus(stage: str, data: Path, profile: str | Profile = "quick", cache_dir: Path | None = None,
                progress: Callable[[str], None] | None = None) -> list[Clip]:
    """The clips of one stage, from the cache when built before with the same settings and seed."""
    check_data(data)
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    clips = []
    for spec in specs_for(stage, prof):
        path = None if cache_dir is None else Path(cache_dir) / f"{stage}-{spec.name}-{prof.name}-{cache_key(spec, prof)}.npz"
        if path is not None and path.exists():
            clips.append(_load(path))
            continue
        if progress:
            progress(f"building corpus clip {stage}/{spec.name} ({prof.name})")
        clip = build_clip(spec, data, prof)
        if path is not None:
            _save(clip, path)
            clip = _load(path)  # the cached form is what every later run sees
        clips.append(clip)
    return clips

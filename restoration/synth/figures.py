"""Moving figures: arms that swing fast across a clip, drawn into the picture (part of the truth) with exact masks.

Real motion a dust remover must leave alone: a hand sweeping 5-40 px a frame changes shape and blurs, so neither a
dense flow nor a template match follows it (the walking man of the archival test film is the real case).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SHUTTER = 0.5  # open for half the frame interval: the motion blur of a 180° shutter
SHUTTER_STEPS = 9  # positions averaged over the open shutter
SUPERSAMPLE = 4  # arms are drawn this much finer and averaged down: soft, sub-pixel edges
MASK_COVER = 0.05  # a pixel belongs to a figure when the arm covers at least this share of it


@dataclass(frozen=True)
class Arm:
    """One arm with a hand about its shoulder: angle(t) = rest + sweep * t + swing * sin(2π t / period + phase)."""

    shoulder: tuple[float, float]  # (x, y) px
    length: float                  # shoulder to hand centre, px
    width: float                   # px
    hand_radius: float             # px
    value: float                   # grey level of the arm, 0..1
    rest: float                    # rad, 0 hangs straight down
    swing: float                   # rad
    period: float                  # frames per full swing
    phase: float                   # rad
    sweep: float = 0.0             # rad per frame, a steady turn on top of the swing

    def angle(self, t: float) -> float:
        return self.rest + self.sweep * t + self.swing * math.sin(2.0 * math.pi * t / self.period + self.phase)

    def hand(self, t: float) -> tuple[float, float]:
        a = self.angle(t)
        return self.shoulder[0] + self.length * math.sin(a), self.shoulder[1] + self.length * math.cos(a)


def plan_arms(count: int, size: tuple[int, int], rng: np.random.Generator, bright_share: float | None = None
              ) -> list[Arm]:
    """`count` arms on a frame of `size` (width, height): one in three bright (or `bright_share`), hands 5-40 px a
    frame at the fastest."""
    width, height = size
    arms = []
    for _ in range(count):
        length = float(rng.uniform(40.0, 70.0))
        margin = length + 10.0
        shoulder = (float(rng.uniform(margin, max(margin + 1.0, width - margin))),
                    float(rng.uniform(10.0, max(11.0, height - margin))))
        dark = rng.random() < 1.0 - (1.0 / 3.0 if bright_share is None else bright_share)
        arms.append(Arm(shoulder, length, float(rng.uniform(8.0, 14.0)), float(rng.uniform(5.0, 8.0)),
                        float(rng.uniform(0.05, 0.2) if dark else rng.uniform(0.75, 0.95)),
                        float(rng.uniform(-0.5, 0.5)), float(rng.uniform(0.3, 0.7)), float(rng.uniform(8.0, 16.0)),
                        float(rng.uniform(0.0, 2.0 * math.pi))))
    return arms


def arm_cover(arm: Arm, t: float, size: tuple[int, int]) -> np.ndarray:
    """Share of each pixel the arm covers while the shutter is open around frame t (float32, 0..1)."""
    width, height = size
    cover = np.zeros((height, width), np.float32)
    s = SUPERSAMPLE
    for step in np.linspace(-SHUTTER / 2, SHUTTER / 2, SHUTTER_STEPS):
        fine = np.zeros((height * s, width * s), np.uint8)
        shoulder = tuple(int(round(v * s)) for v in arm.shoulder)
        hand = tuple(int(round(v * s)) for v in arm.hand(t + float(step)))
        cv2.line(fine, shoulder, hand, 255, max(1, int(round(arm.width * s))))
        cv2.circle(fine, hand, int(round(arm.hand_radius * s)), 255, -1)
        cover += cv2.resize(fine, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    return cover / np.float32(255.0 * SHUTTER_STEPS)


def add_arms(frames: list[np.ndarray], count: int, seed: int, bright_share: float | None = None
             ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The frames with `count` swinging arms (plan_arms) drawn in, and each frame's figure mask."""
    height, width = frames[0].shape[:2]
    return draw_arms(frames, plan_arms(count, (width, height), np.random.default_rng(seed), bright_share))


def draw_arms(frames: list[np.ndarray], arms: list[Arm]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The frames with the arms drawn in (later arms in front), and each frame's figure mask."""
    height, width = frames[0].shape[:2]
    out, masks = [], []
    for t, frame in enumerate(frames):
        frame = np.asarray(frame, np.float32).copy()
        mask = np.zeros((height, width), bool)
        for arm in arms:
            cover = arm_cover(arm, float(t), (width, height))[..., None]
            frame = frame * (1.0 - cover) + np.float32(arm.value) * cover
            mask |= cover[..., 0] >= MASK_COVER
        out.append(frame.astype(np.float32))
        masks.append(mask)
    return out, masks

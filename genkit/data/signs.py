"""Procedural sign language on genkit's SMPL-X-layout skeleton: a vocabulary of signs and their sentences.

A sign (``Sign``) is built the way sign linguistics describes one: a **handshape** (finger curls of the
dominant right hand), a **location** (where the right wrist goes: chest, chin, forehead, the side or the
neutral space in front), a **movement** of the hand there (up, down, circle, tap, side to side, forward,
hold), whether the left hand mirrors it (two-handed) and a **non-manual** component (facial expression in
the 10 SMPL-X expression values, with the jaw and a head nod or shake). The arm reaches the wrist target by
two-bone inverse kinematics; everything is in joint rotations (``genkit.data.skeleton``), so the motion is
a sequence of SMPL-X poses.

A sentence is ``SIGNS_PER_SENTENCE`` signs of the vocabulary, ``FRAMES_PER_SIGN`` frames each (the first
``TRANSITION`` frames blend from the previous sign), from a rest pose: its caption is the glosses in
lower case ("hello thanks house"). Held-out sentences (``split="heldout"``, a tenth of all sentences, fixed)
never appear in training, while every sign does: new compositions of known signs. Samples are seeded;
the jitter varies location, amplitude and timing a little (``sentence_motion`` without a generator, or
``SignDataset(jitter=False)``: the canonical motion that MPJPE and DTW compare against).

Motion features (``to_features``): per frame the 6-D rotation of every joint (55 x 6) and the expression
(10): 340 numbers (``FEATURES``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from genkit.data.skeleton import (
    FINGERS,
    JOINTS,
    NUM_JOINTS,
    REST_OFFSETS,
    axis_angle_to_matrix,
    forward_kinematics,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)

__all__ = [
    "FEATURES",
    "FPS",
    "FRAMES",
    "FRAMES_PER_SIGN",
    "GLOSSES",
    "HANDSHAPES",
    "LOCATIONS",
    "MOVEMENTS",
    "NONMANUALS",
    "SIGNS",
    "SIGNS_PER_SENTENCE",
    "Sign",
    "SignDataset",
    "from_features",
    "motion_joints",
    "parse_sentence",
    "sentence_motion",
    "sentences",
    "to_features",
]

FPS = 20
FRAMES_PER_SIGN = 16
SIGNS_PER_SENTENCE = 3
FRAMES = FRAMES_PER_SIGN * SIGNS_PER_SENTENCE  # 48 frames, 2.4 s
TRANSITION = 5
FEATURES = NUM_JOINTS * 6 + 10

# finger curl per joint (radians) of index, middle, pinky, ring, thumb (SMPL-X's finger order)
HANDSHAPES: dict[str, tuple[float, float, float, float, float]] = {
    "flat": (0.0, 0.0, 0.0, 0.0, 0.0),
    "fist": (1.4, 1.4, 1.4, 1.4, 0.7),
    "point": (0.0, 1.4, 1.4, 1.4, 0.7),
    "v": (0.0, 0.0, 1.4, 1.4, 0.7),
    "thumb": (1.4, 1.4, 1.4, 1.4, 0.0),
    "claw": (0.8, 0.8, 0.8, 0.8, 0.4),
}
# right-wrist targets (world, metres; the body faces +z, its right is -x)
LOCATIONS: dict[str, tuple[float, float, float]] = {
    "chest": (-0.06, 1.26, 0.24),
    "chin": (-0.03, 1.50, 0.20),
    "forehead": (-0.04, 1.66, 0.17),
    "side": (-0.36, 1.14, 0.22),
    "space": (-0.16, 1.28, 0.40),
}
MOVEMENTS = ("hold", "up", "down", "circle", "tap", "sideways", "forward")
NONMANUALS = ("neutral", "raised", "frown", "mouth", "nod", "shake")
_LEFT_REST = (0.30, 0.98, 0.08)  # the left wrist hangs at the side unless the sign is two-handed


@dataclass(frozen=True)
class Sign:
    gloss: str
    handshape: str
    location: str
    movement: str
    two_handed: bool
    nonmanual: str


SIGNS: tuple[Sign, ...] = (
    Sign("hello", "flat", "forehead", "forward", False, "raised"),
    Sign("thanks", "flat", "chin", "forward", False, "neutral"),
    Sign("yes", "fist", "space", "tap", False, "nod"),
    Sign("no", "v", "space", "sideways", False, "shake"),
    Sign("house", "flat", "chest", "down", True, "neutral"),
    Sign("water", "v", "chin", "tap", False, "neutral"),
    Sign("think", "point", "forehead", "tap", False, "frown"),
    Sign("eat", "claw", "chin", "tap", False, "mouth"),
    Sign("friend", "point", "space", "circle", True, "raised"),
    Sign("help", "thumb", "chest", "up", True, "neutral"),
    Sign("where", "point", "space", "sideways", False, "frown"),
    Sign("good", "flat", "chin", "down", False, "raised"),
    Sign("book", "flat", "space", "hold", True, "neutral"),
    Sign("happy", "flat", "chest", "circle", False, "mouth"),
    Sign("go", "point", "side", "forward", True, "neutral"),
    Sign("wait", "claw", "side", "sideways", True, "frown"),
)
GLOSSES = tuple(s.gloss for s in SIGNS)
_BY_GLOSS = {s.gloss: s for s in SIGNS}


def sentences(split: str = "train") -> list[tuple[str, ...]]:
    """Every sentence of three different signs in a fixed order; ``"heldout"`` is every tenth of them (a
    fixed permutation), ``"train"`` the rest, ``"all"`` both."""
    every = [s for s in itertools.permutations(GLOSSES, SIGNS_PER_SENTENCE)]
    order = np.random.default_rng(1234).permutation(len(every))
    held = set(order[: len(every) // 10].tolist())
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"unknown split {split!r}")
    return [s for i, s in enumerate(every) if split == "all" or (i in held) == (split == "heldout")]


def parse_sentence(text: str) -> tuple[str, ...]:
    """ "hello thanks house" -> the glosses; ValueError naming an unknown word or a wrong length."""
    words = tuple(text.lower().replace(",", " ").split())
    unknown = [w for w in words if w not in _BY_GLOSS]
    if unknown:
        raise ValueError(f"unknown sign(s) {', '.join(map(repr, unknown))}; known: {', '.join(GLOSSES)}")
    if len(words) != SIGNS_PER_SENTENCE:
        raise ValueError(f"a sentence is {SIGNS_PER_SENTENCE} signs, got {len(words)}: {text!r}")
    return words


# --- kinematics ---------------------------------------------------------------------------------------
def _rotation_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) of the smallest rotation taking unit vectors ``a`` to ``b``."""
    axis = torch.cross(a, b, dim=-1)
    s = axis.norm(dim=-1, keepdim=True)
    c = (a * b).sum(-1, keepdim=True)
    return axis / s.clamp_min(1e-9) * torch.atan2(s, c)


_REST, _ = forward_kinematics(axis_angle_to_matrix(torch.zeros(NUM_JOINTS, 3)))
_J = {name: i for i, name in enumerate(JOINTS)}


def _arm_ik(side: str, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(shoulder, elbow) local axis-angle (T, 3) that put the ``side`` wrist at ``target`` (T, 3) (clamped
    to the arm's reach), the elbow out to the side and down."""
    s = _REST[_J[f"{side}_shoulder"]]
    l1 = float(REST_OFFSETS[_J[f"{side}_elbow"]].norm())
    l2 = float(REST_OFFSETS[_J[f"{side}_wrist"]].norm())
    d = target - s
    dist = d.norm(dim=-1, keepdim=True).clamp(0.05, (l1 + l2) * 0.999)
    u = d / d.norm(dim=-1, keepdim=True)
    # the elbow lies in the plane of u and the pole direction, at the law-of-cosines angle from u
    pole = torch.tensor([0.8 if side == "left" else -0.8, -1.0, -0.2]).expand_as(u)
    pole = pole - (pole * u).sum(-1, keepdim=True) * u
    pole = pole / pole.norm(dim=-1, keepdim=True)
    cos_a = ((l1**2 + dist**2 - l2**2) / (2 * l1 * dist)).clamp(-1, 1)
    elbow = s + l1 * (cos_a * u + torch.sqrt(1 - cos_a**2) * pole)
    rest_dir = torch.tensor([1.0 if side == "left" else -1.0, 0.0, 0.0]).expand_as(u)
    upper = (elbow - s) / l1
    r_shoulder = _rotation_between(rest_dir, upper)
    fore_world = target - elbow
    fore_world = fore_world / fore_world.norm(dim=-1, keepdim=True)
    fore_local = (axis_angle_to_matrix(r_shoulder).transpose(-1, -2) @ fore_world[..., None])[..., 0]
    return r_shoulder, _rotation_between(rest_dir, fore_local)


def _hand_pose(side: str, handshape: str, frames: int) -> torch.Tensor:
    """(frames, 15, 3) finger rotations of a handshape: curls about the axis across the palm."""
    curls = HANDSHAPES[handshape]
    out = torch.zeros(frames, 15, 3)
    for f, finger in enumerate(FINGERS):
        for k in range(3):
            if finger == "thumb":
                out[:, f * 3 + k, 0] = curls[f] * (0.6 if k == 0 else 1.0)
            else:
                out[:, f * 3 + k, 2] = curls[f] * (1.0 if side == "right" else -1.0)
    return out


def _movement(kind: str, phase: torch.Tensor, amp: float) -> torch.Tensor:
    """(T, 3) offset of the wrist target over ``phase`` in [0, 1]."""
    z = torch.zeros_like(phase)
    two = 2 * math.pi * 2 * phase
    offsets = {
        "hold": torch.stack([z, 0.01 * torch.sin(two), z], -1),
        "up": torch.stack([z, 0.14 * phase - 0.07, z], -1),
        "down": torch.stack([z, 0.07 - 0.14 * phase, z], -1),
        "circle": torch.stack(
            [0.06 * torch.cos(2 * math.pi * phase), 0.06 * torch.sin(2 * math.pi * phase), z], -1
        ),
        "tap": torch.stack([z, z, -0.06 * torch.sin(two).abs()], -1),
        "sideways": torch.stack([0.07 * torch.sin(two), z, z], -1),
        "forward": torch.stack([z, z, 0.16 * phase - 0.05], -1),
    }
    return offsets[kind] * amp


def _nonmanual(kind: str, phase: torch.Tensor, amp: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(expression (T, 10), jaw axis-angle (T, 3), head axis-angle (T, 3))."""
    t = len(phase)
    expr, jaw, head = torch.zeros(t, 10), torch.zeros(t, 3), torch.zeros(t, 3)
    env = torch.sin(math.pi * phase) * amp  # rises and falls within the sign
    if kind == "raised":
        expr[:, 0], expr[:, 1] = 1.6 * env, 0.8 * env
    elif kind == "frown":
        expr[:, 0], expr[:, 2] = -1.6 * env, 1.0 * env
    elif kind == "mouth":
        expr[:, 3] = 1.5 * env
        jaw[:, 0] = 0.35 * env
    elif kind == "nod":
        head[:, 0] = 0.25 * torch.sin(2 * math.pi * 2 * phase) * amp
    elif kind == "shake":
        head[:, 1] = 0.35 * torch.sin(2 * math.pi * 2 * phase) * amp
    return expr, jaw, head


def _sign_pose(sign: Sign, rng: np.random.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(pose (F, 55, 3), expression (F, 10)) of one sign held in place (no transition)."""
    f = FRAMES_PER_SIGN
    jitter = rng is not None
    amp = float(rng.uniform(0.85, 1.15)) if jitter else 1.0
    shift = torch.from_numpy(rng.normal(0, 0.015, 3)).float() if jitter else torch.zeros(3)
    speed = float(rng.uniform(0.9, 1.1)) if jitter else 1.0
    phase = (torch.linspace(0, 1, f) * speed).clamp(0, 1)
    target = torch.tensor(LOCATIONS[sign.location]) + shift + _movement(sign.movement, phase, amp)
    pose = torch.zeros(f, NUM_JOINTS, 3)
    pose[:, _J["right_shoulder"]], pose[:, _J["right_elbow"]] = _arm_ik("right", target)
    if sign.two_handed:
        left = target * torch.tensor([-1.0, 1.0, 1.0])
    else:
        left = torch.tensor(_LEFT_REST).expand(f, 3)
    pose[:, _J["left_shoulder"]], pose[:, _J["left_elbow"]] = _arm_ik("left", left)
    pose[:, _J["right_index1"] : _J["right_thumb3"] + 1] = _hand_pose("right", sign.handshape, f)
    left_shape = sign.handshape if sign.two_handed else "flat"
    pose[:, _J["left_index1"] : _J["left_thumb3"] + 1] = _hand_pose("left", left_shape, f)
    expr, jaw, head = _nonmanual(sign.nonmanual, phase, amp)
    pose[:, _J["jaw"]], pose[:, _J["head"]] = jaw, head
    return pose, expr


def _rest_pose() -> tuple[torch.Tensor, torch.Tensor]:
    pose = torch.zeros(1, NUM_JOINTS, 3)
    for side, x in (("right", -1.0), ("left", 1.0)):
        target = torch.tensor([[x * _LEFT_REST[0], _LEFT_REST[1], _LEFT_REST[2]]])
        pose[:, _J[f"{side}_shoulder"]], pose[:, _J[f"{side}_elbow"]] = _arm_ik(side, target)
        pose[:, _J[f"{side}_index1"] : _J[f"{side}_thumb3"] + 1] = _hand_pose(side, "flat", 1)
    return pose, torch.zeros(1, 10)


def _blend_poses(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Frames (T, 55, 3) going from axis-angle pose ``a`` to ``b`` (55, 3) with weights ``w`` (T,): linear
    in 6-D rotations, re-orthonormalised."""
    ma, mb = matrix_to_rot6d(axis_angle_to_matrix(a)), matrix_to_rot6d(axis_angle_to_matrix(b))
    return matrix_to_axis_angle(rot6d_to_matrix(ma + (mb - ma) * w[:, None, None]))


def sentence_motion(
    glosses: tuple[str, ...], rng: np.random.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pose (FRAMES, 55, 3) axis-angle, expression (FRAMES, 10)) of a sentence; ``rng`` None: canonical."""
    prev_pose, prev_expr = _rest_pose()
    poses, exprs = [], []
    ramp = 0.5 - 0.5 * torch.cos(math.pi * torch.linspace(0, 1, TRANSITION + 1)[1:])  # ease in-out
    for g in glosses:
        pose, expr = _sign_pose(_BY_GLOSS[g], rng)
        # the first frames move from where the last sign ended to this sign's start
        pose = torch.cat([_blend_poses(prev_pose[-1], pose[TRANSITION], ramp), pose[TRANSITION:]])
        expr = torch.cat(
            [
                prev_expr[-1:] + (expr[TRANSITION : TRANSITION + 1] - prev_expr[-1:]) * ramp[:, None],
                expr[TRANSITION:],
            ]
        )
        poses.append(pose)
        exprs.append(expr)
        prev_pose, prev_expr = pose, expr
    return torch.cat(poses), torch.cat(exprs)


def to_features(pose: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
    """(..., T, 55, 3) axis-angle and (..., T, 10) -> (..., T, 340) motion features."""
    rot = matrix_to_rot6d(axis_angle_to_matrix(pose)).flatten(-2)
    return torch.cat([rot, expression], -1)


def from_features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., T, 340) -> (pose (..., T, 55, 3) axis-angle, expression (..., T, 10))."""
    rot = x[..., : NUM_JOINTS * 6].unflatten(-1, (NUM_JOINTS, 6))
    return matrix_to_axis_angle(rot6d_to_matrix(rot)), x[..., NUM_JOINTS * 6 :]


def motion_joints(x: torch.Tensor) -> torch.Tensor:
    """(..., T, 340) motion features -> joint positions (..., T, 55, 3) by forward kinematics
    (differentiable: the training's position loss and the metrics' MPJPE)."""
    rot = rot6d_to_matrix(x[..., : NUM_JOINTS * 6].unflatten(-1, (NUM_JOINTS, 6)))
    return forward_kinematics(rot)[0]


class SignDataset(torch.utils.data.Dataset):
    """``num`` seeded sentences of a split: item i draws its sentence and jitter from
    ``default_rng([seed, i])``; items hold ``motion`` (FRAMES, 340), ``caption`` and ``glosses``."""

    def __init__(self, num: int, seed: int = 0, split: str = "train", jitter: bool = True):
        self.num, self.seed, self.jitter = num, seed, jitter
        self.sentences = sentences(split)

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, i])
        glosses = self.sentences[int(rng.integers(len(self.sentences)))]
        pose, expr = sentence_motion(glosses, rng if self.jitter else None)
        return {"motion": to_features(pose, expr), "caption": " ".join(glosses), "glosses": glosses}

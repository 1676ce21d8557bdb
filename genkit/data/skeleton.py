"""genkit's own skeleton in the SMPL-X parameter layout: 55 joints, forward kinematics, SMPL-X-style npz.

The joint order and the per-frame parameters are SMPL-X's (public knowledge): 22 body joints rooted at the
pelvis, the jaw, two eyes and 2 x 15 finger joints; ``global_orient`` (3), ``body_pose`` (21 x 3),
``jaw_pose`` (3), ``leye_pose``/``reye_pose`` (3 each), ``left_hand_pose``/``right_hand_pose`` (15 x 3,
full axis-angle, not PCA), ``expression`` (10), ``transl`` (3), ``betas`` (10). The topology and the bone
offsets below are genkit's own (no licensed model file; the ``smplx`` package is not a dependency), so
poses written here load into SMPL-X-fitted tools and SMPL-X-fitted data (How2Sign-SMPL-X) reads here, with
genkit's bone lengths.

World: y up, the body faces +z, its left is +x; metres. A pose is (..., 55, 3) axis-angle rotations of each
joint in its parent's frame; ``forward_kinematics`` gives joint positions (..., 55, 3) and world rotations.
The 6-D rotation representation (Zhou et al., CVPR 2019: the first two columns of the matrix) is what the
motion model predicts: continuous, unlike axis-angle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genkit.utils import GenkitError, atomic_file, reading

__all__ = [
    "BODY_JOINTS",
    "FINGERS",
    "JOINTS",
    "NUM_JOINTS",
    "PARENTS",
    "REST_OFFSETS",
    "axis_angle_to_matrix",
    "forward_kinematics",
    "load_smplx_npz",
    "matrix_to_axis_angle",
    "matrix_to_rot6d",
    "rot6d_to_matrix",
    "save_smplx_npz",
    "skeleton_edges",
]

BODY_JOINTS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
FINGERS = ("index", "middle", "pinky", "ring", "thumb")  # SMPL-X's order within a hand
JOINTS: tuple[str, ...] = (
    *BODY_JOINTS,
    "jaw",
    "left_eye",
    "right_eye",
    *(f"{side}_{f}{k}" for side in ("left", "right") for f in FINGERS for k in (1, 2, 3)),
)
NUM_JOINTS = len(JOINTS)  # 55
_INDEX = {name: i for i, name in enumerate(JOINTS)}

_BODY_PARENT = {
    "left_hip": "pelvis", "right_hip": "pelvis", "spine1": "pelvis", "left_knee": "left_hip",
    "right_knee": "right_hip", "spine2": "spine1", "left_ankle": "left_knee", "right_ankle": "right_knee",
    "spine3": "spine2", "left_foot": "left_ankle", "right_foot": "right_ankle", "neck": "spine3",
    "left_collar": "spine3", "right_collar": "spine3", "head": "neck", "left_shoulder": "left_collar",
    "right_shoulder": "right_collar", "left_elbow": "left_shoulder", "right_elbow": "right_shoulder",
    "left_wrist": "left_elbow", "right_wrist": "right_elbow", "jaw": "head", "left_eye": "head",
    "right_eye": "head",
}  # fmt: skip


def _parent(name: str) -> str | None:
    if name == "pelvis":
        return None
    if name in _BODY_PARENT:
        return _BODY_PARENT[name]
    side, rest = name.split("_", 1)
    k = int(rest[-1])
    return f"{side}_wrist" if k == 1 else f"{side}_{rest[:-1]}{k - 1}"


PARENTS: tuple[int, ...] = tuple(-1 if _parent(n) is None else _INDEX[_parent(n)] for n in JOINTS)

# Bone offsets from the parent in the rest pose (a T-pose), metres; left-side values, mirrored in x.
_BODY_OFFSET = {
    "pelvis": (0.0, 0.95, 0.0), "left_hip": (0.09, -0.08, 0.0), "spine1": (0.0, 0.10, -0.01),
    "left_knee": (0.0, -0.40, 0.0), "spine2": (0.0, 0.12, 0.0), "left_ankle": (0.0, -0.40, -0.02),
    "spine3": (0.0, 0.12, 0.01), "left_foot": (0.0, -0.05, 0.12), "neck": (0.0, 0.17, -0.01),
    "left_collar": (0.07, 0.11, 0.0), "head": (0.0, 0.10, 0.02), "left_shoulder": (0.11, 0.0, 0.0),
    "left_elbow": (0.27, 0.0, 0.0), "left_wrist": (0.25, 0.0, 0.0), "jaw": (0.0, -0.02, 0.06),
    "left_eye": (0.03, 0.06, 0.08),
}  # fmt: skip
# finger bases from the wrist (x along the hand, z towards the thumb side of a palm facing down)
_FINGER_BASE = {
    "index": (0.09, 0.0, 0.025),
    "middle": (0.095, 0.0, 0.005),
    "ring": (0.09, 0.0, -0.015),
    "pinky": (0.08, 0.0, -0.035),
    "thumb": (0.03, -0.01, 0.035),
}
_PHALANX = {"index": 0.03, "middle": 0.033, "ring": 0.03, "pinky": 0.024, "thumb": 0.03}


def _offset(name: str) -> tuple[float, float, float]:
    mirror = name.startswith("right_")
    base = name.replace("right_", "left_", 1)
    if base in _BODY_OFFSET:
        x, y, z = _BODY_OFFSET[base]
    else:
        finger, k = base.split("_", 1)[1][:-1], int(base[-1])
        if k == 1:
            x, y, z = _FINGER_BASE[finger]
        elif finger == "thumb":  # the thumb points forward and out
            x, y, z = _PHALANX[finger] * 0.6, 0.0, _PHALANX[finger] * 0.8
        else:
            x, y, z = _PHALANX[finger], 0.0, 0.0
    return (-x if mirror else x), y, z


REST_OFFSETS = torch.tensor([_offset(n) for n in JOINTS], dtype=torch.float32)  # (55, 3)


def skeleton_edges() -> list[tuple[int, int]]:
    """(parent, child) joint index pairs: the bones (the graph of the motion model's pose encoder)."""
    return [(p, c) for c, p in enumerate(PARENTS) if p >= 0]


# --- rotations ----------------------------------------------------------------------------------------
def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (Rodrigues; exact at zero)."""
    theta = aa.norm(dim=-1, keepdim=True)[..., None]  # (..., 1, 1)
    k = aa / aa.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    zero = torch.zeros_like(k[..., 0])
    kx = torch.stack(
        [zero, -k[..., 2], k[..., 1], k[..., 2], zero, -k[..., 0], -k[..., 1], k[..., 0], zero], -1
    ).view(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(kx)
    return eye + torch.sin(theta) * kx + (1 - torch.cos(theta)) * (kx @ kx)


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations -> (..., 3) axis-angle with angle in [0, pi] (via the quaternion)."""
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # quaternion by Shepperd's method, robust at every angle
    q = torch.stack(
        [
            1 + tr,
            1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
            1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
            1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2],
        ],
        -1,
    )
    best = q.argmax(-1, keepdim=True)
    w = torch.stack(
        [
            torch.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], q[..., 1], m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], q[..., 2], m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], q[..., 3]], -1),
        ],
        -2,
    )  # fmt: skip
    quat = torch.gather(w, -2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    quat = quat / quat.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    vec_norm = quat[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(vec_norm, quat[..., :1])
    return quat[..., 1:] * angle / vec_norm.clamp_min(1e-12)


def matrix_to_rot6d(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], -1)


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt (any 6 numbers give a rotation)."""
    a, b = d6[..., :3], d6[..., 3:]
    x = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b = b - (x * b).sum(-1, keepdim=True) * x
    y = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return torch.stack([x, y, torch.cross(x, y, dim=-1)], -1)


def forward_kinematics(
    rotations: torch.Tensor, transl: torch.Tensor | None = None, offsets: torch.Tensor = REST_OFFSETS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint positions (..., 55, 3) and world rotations (..., 55, 3, 3) of local joint rotations
    ``rotations`` (..., 55, 3, 3) (e.g. ``axis_angle_to_matrix(pose)``), the root moved by ``transl``."""
    offsets = offsets.to(rotations)
    pos, rot = [], []
    for j, p in enumerate(PARENTS):
        if p < 0:
            rot.append(rotations[..., j, :, :])
            pos.append(offsets[j].expand(*rotations.shape[:-3], 3))
        else:
            pos.append(pos[p] + (rot[p] @ offsets[j][:, None])[..., 0])
            rot.append(rot[p] @ rotations[..., j, :, :])
    positions = torch.stack(pos, -2)
    if transl is not None:
        positions = positions + transl[..., None, :]
    return positions, torch.stack(rot, -3)


# --- SMPL-X-style npz ---------------------------------------------------------------------------------
_SLICES = {  # name -> joint range of the (T, 55, 3) pose
    "global_orient": (0, 1),
    "body_pose": (1, 22),
    "jaw_pose": (22, 23),
    "leye_pose": (23, 24),
    "reye_pose": (24, 25),
    "left_hand_pose": (25, 40),
    "right_hand_pose": (40, 55),
}


def save_smplx_npz(
    path: str | Path,
    pose: torch.Tensor,
    expression: torch.Tensor,
    transl: torch.Tensor | None = None,
    fps: float = 25.0,
) -> Path:
    """Write (T, 55, 3) axis-angle ``pose``, (T, 10) ``expression`` and (T, 3) ``transl`` as an SMPL-X-style
    npz (the keys above, flattened per frame; ``betas`` zero: genkit's own bone lengths), atomically."""
    pose = pose.detach().float().cpu()
    frames = pose.shape[0]
    arrays = {k: pose[:, a:b].reshape(frames, -1).numpy() for k, (a, b) in _SLICES.items()}
    arrays["expression"] = expression.detach().float().cpu().numpy()
    arrays["transl"] = (torch.zeros(frames, 3) if transl is None else transl.detach().float().cpu()).numpy()
    arrays["betas"] = np.zeros(10, dtype=np.float32)
    arrays["mocap_frame_rate"] = np.array(fps, dtype=np.float32)
    path = Path(path)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def load_smplx_npz(path: str | Path) -> dict[str, torch.Tensor]:
    """An SMPL-X-style npz (this module's or a fitted dataset's, axis-angle hands) -> ``pose`` (T, 55, 3),
    ``expression`` (T, 10; zeros if absent), ``transl`` (T, 3). Never unpickles (allow_pickle=False)."""
    with reading(f"{str(path)!r} is not an SMPL-X npz", (OSError, ValueError, KeyError)):
        data = np.load(path, allow_pickle=False)
        frames = np.asarray(data["body_pose"]).reshape(-1, 63).shape[0]
        parts = []
        for k, (a, b) in _SLICES.items():
            if k in data:
                arr = np.asarray(data[k], dtype=np.float32).reshape(frames, b - a, 3)
            elif k in ("jaw_pose", "leye_pose", "reye_pose"):
                arr = np.zeros((frames, b - a, 3), np.float32)
            else:
                raise KeyError(k)
            parts.append(torch.from_numpy(arr))
        pose = torch.cat(parts, 1)
        expr = np.asarray(data["expression"], np.float32) if "expression" in data else np.zeros((frames, 10))
        transl = np.asarray(data["transl"], np.float32) if "transl" in data else np.zeros((frames, 3))
    if expr.shape[-1] < 10:
        raise GenkitError(f"{str(path)!r}: expression has {expr.shape[-1]} values, 10 are needed")
    return {
        "pose": pose,
        "expression": torch.as_tensor(expr[..., :10], dtype=torch.float32).reshape(frames, 10),
        "transl": torch.as_tensor(transl, dtype=torch.float32).reshape(frames, 3),
    }

"""A procedural signing avatar: a mesh skinned to genkit's SMPL-X-layout skeleton, rasterised to video.

The body is built from ``trimesh`` primitives in the rest pose: a capsule along every bone (torso, arms,
legs, each finger phalanx), a head sphere with eyes, brows and a mouth. Skinning is rigid: every vertex
follows one joint (``BodyMesh.joint``), ``v = R_j (v_rest - p_j^rest) + p_j``. The face moves with the
SMPL-X expression values as linear blendshapes: brows raise with ``expression[0]`` and pull in with
``expression[2]``; the mouth opens with the jaw joint and ``expression[3]``. Frames come from
``genkit.render.raster`` (z-buffer, front camera on the upper body) with Lambert shading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genkit.data.skeleton import (
    JOINTS,
    NUM_JOINTS,
    PARENTS,
    axis_angle_to_matrix,
    forward_kinematics,
)

__all__ = ["BodyMesh", "body_mesh", "pose_vertices", "render_motion"]

_J = {n: i for i, n in enumerate(JOINTS)}
_SKIN = (0.87, 0.69, 0.56)
_SHIRT = (0.20, 0.42, 0.70)
_TROUSERS = (0.25, 0.25, 0.30)
_DARK = (0.12, 0.08, 0.08)
_LIGHT = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])


@dataclass
class BodyMesh:
    vertices: torch.Tensor  # (V, 3) rest pose
    faces: torch.Tensor  # (F, 3) long
    joint: torch.Tensor  # (V,) long: the joint each vertex follows
    colors: torch.Tensor  # (F, 3) in [0, 1]
    blend: torch.Tensor  # (V, 3, 11): offsets per expression value 0..9 and the jaw opening (index 10)


def _bone_radius(child: str) -> float:
    if any(f in child for f in ("index", "middle", "ring", "pinky", "thumb")):
        return 0.009
    if child in ("spine1", "spine2", "spine3"):
        return 0.11
    if "hip" in child:
        return 0.07
    if "knee" in child or "ankle" in child:
        return 0.055
    if "collar" in child or "shoulder" in child:
        return 0.05
    if "elbow" in child:
        return 0.04
    if "wrist" in child:
        return 0.033
    if "neck" in child or "head" in child:
        return 0.045
    return 0.03


def body_mesh() -> BodyMesh:
    """The avatar's rest-pose mesh, skinning and face blendshapes."""
    import trimesh

    rest, _ = forward_kinematics(axis_angle_to_matrix(torch.zeros(NUM_JOINTS, 3)))
    rest = rest.numpy()
    parts: list[tuple[trimesh.Trimesh, int, tuple, np.ndarray | None]] = []
    for c, p in enumerate(PARENTS):
        child = JOINTS[c]
        if p < 0 or child in ("jaw", "left_eye", "right_eye"):
            continue
        a, b = rest[p], rest[c]
        length = float(np.linalg.norm(b - a))
        if length < 1e-6:
            continue
        r = _bone_radius(child)
        cap = trimesh.creation.capsule(height=max(length - 0.2 * r, 1e-3), radius=r, count=[8, 8])
        # capsule along +z centred at the origin -> along the bone, centred at the bone's middle
        z = (b - a) / length
        x = np.cross([0.0, 1.0, 0.0] if abs(z[1]) < 0.9 else [1.0, 0.0, 0.0], z)
        x /= np.linalg.norm(x)
        m = np.eye(4)
        m[:3, :3] = np.stack([x, np.cross(z, x), z], 1)
        m[:3, 3] = (a + b) / 2
        cap.apply_transform(m)
        lower = any(k in child for k in ("hip", "knee", "ankle", "foot"))
        skin = "wrist" in child or any(f in child for f in ("index", "middle", "ring", "pinky", "thumb"))
        colour = _SKIN if skin or child == "head" else (_TROUSERS if lower else _SHIRT)
        parts.append((cap, p, colour, None))
    head = rest[_J["head"]]
    centre = head + np.array([0.0, 0.04, 0.0])
    parts.append(
        (trimesh.creation.icosphere(2, radius=0.1).apply_translation(centre), _J["head"], _SKIN, None)
    )
    for sx in (1.0, -1.0):  # left, right eye
        eye = centre + np.array([sx * 0.035, 0.02, 0.09])
        parts.append(
            (trimesh.creation.icosphere(1, radius=0.013).apply_translation(eye), _J["head"], _DARK, None)
        )
        brow = trimesh.creation.box(extents=[0.04, 0.008, 0.01]).apply_translation(eye + [0.0, 0.03, 0.005])
        blend = np.zeros((len(brow.vertices), 3, 11))
        blend[:, 1, 0] = 0.012  # expression[0] raises the brows
        inner = np.sign(brow.vertices[:, 0] - eye[0]) == -np.sign(sx)
        blend[inner, 1, 2] = -0.01  # expression[2] pulls the inner ends down (a frown)
        parts.append((brow, _J["head"], _DARK, blend))
    mouth = trimesh.creation.box(extents=[0.05, 0.012, 0.01]).apply_translation(centre + [0.0, -0.05, 0.095])
    blend = np.zeros((len(mouth.vertices), 3, 11))
    low = mouth.vertices[:, 1] < centre[1] - 0.05
    blend[low, 1, 3] = -0.012  # expression[3] and the jaw open the mouth
    blend[low, 1, 10] = -0.08
    parts.append((mouth, _J["head"], _DARK, blend))

    verts, faces, joint, colors, blends, n = [], [], [], [], [], 0
    for mesh, j, colour, blend in parts:
        verts.append(np.asarray(mesh.vertices))
        faces.append(np.asarray(mesh.faces) + n)
        joint.append(np.full(len(mesh.vertices), j))
        colors.append(np.tile(colour, (len(mesh.faces), 1)))
        blends.append(np.zeros((len(mesh.vertices), 3, 11)) if blend is None else blend)
        n += len(mesh.vertices)
    return BodyMesh(
        torch.tensor(np.concatenate(verts), dtype=torch.float32),
        torch.tensor(np.concatenate(faces), dtype=torch.long),
        torch.tensor(np.concatenate(joint), dtype=torch.long),
        torch.tensor(np.concatenate(colors), dtype=torch.float32),
        torch.tensor(np.concatenate(blends), dtype=torch.float32),
    )


def pose_vertices(mesh: BodyMesh, pose: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
    """(T, V, 3) posed vertices for axis-angle ``pose`` (T, 55, 3) and ``expression`` (T, 10)."""
    rest, _ = forward_kinematics(axis_angle_to_matrix(torch.zeros(NUM_JOINTS, 3)))
    pos, rot = forward_kinematics(axis_angle_to_matrix(pose.float()))
    jaw_open = pose[:, _J["jaw"], 0:1].float()  # the jaw's rotation about x opens the mouth
    coeffs = torch.cat([expression.float(), jaw_open], -1)  # (T, 11)
    local = mesh.vertices[None] + torch.einsum("vck,tk->tvc", mesh.blend, coeffs) - rest[mesh.joint][None]
    return torch.einsum("tvij,tvj->tvi", rot[:, mesh.joint], local) + pos[:, mesh.joint]


def render_motion(
    pose: torch.Tensor, expression: torch.Tensor, size: int = 128, mesh: BodyMesh | None = None
) -> np.ndarray:
    """(T, size, size, 3) uint8 frames of the avatar signing ``pose`` (T, 55, 3) with ``expression``."""
    from genkit.render.geometry import look_at
    from genkit.render.raster import rasterize

    mesh = mesh or body_mesh()
    verts = pose_vertices(mesh, pose, expression)
    c2w = torch.from_numpy(look_at((0.0, 1.32, 2.1), target=(0.0, 1.3, 0.0))).float()
    focal = 1.9 * size
    frames = np.empty((len(verts), size, size, 3), dtype=np.uint8)
    for t, v in enumerate(verts):
        face, _, _ = rasterize(v, mesh.faces, c2w, focal, size)
        tri = v[mesh.faces]
        n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
        n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        shade = 0.45 + 0.55 * (n @ torch.from_numpy(_LIGHT).float()).abs()
        colour = mesh.colors * shade[:, None]
        img = torch.full((size, size, 3), 0.94)
        hit = face >= 0
        img[hit] = colour[face[hit]]
        frames[t] = (img.clamp(0, 1) * 255).round().byte().numpy()
    return frames

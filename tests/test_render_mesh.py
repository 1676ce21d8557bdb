"""Marching-cubes export (render/mesh.py): a sphere's level set, and the empty case."""

import pytest
import torch
import trimesh

from genkit.render.mesh import extract_mesh, save_mesh
from genkit.utils import GenkitError


def sphere_density(x):
    return 20.0 * (x.norm(dim=-1) < 0.5).float()


def test_sphere_mesh_round_trip(tmp_path):
    mesh = extract_mesh(
        lambda x: 20.0 * torch.sigmoid(20 * (0.5 - x.norm(dim=-1))),
        [-1, -1, -1, 1, 1, 1],
        resolution=48,
        threshold=10.0,
    )
    r = torch.from_numpy(mesh.vertices).norm(dim=-1)
    assert abs(r.mean().item() - 0.5) < 0.02 and mesh.is_watertight
    for ext in (".ply", ".glb"):
        path = save_mesh(mesh, tmp_path / f"sphere{ext}")
        back = trimesh.load(path, force="mesh")
        assert len(back.faces) == len(mesh.faces)


def test_empty_level_set_and_bad_paths_are_clear_errors(tmp_path):
    with pytest.raises(GenkitError, match="no surface"):
        extract_mesh(lambda x: torch.zeros(len(x)), [-1, -1, -1, 1, 1, 1], resolution=8)
    mesh = extract_mesh(sphere_density, [-1, -1, -1, 1, 1, 1], resolution=16)
    with pytest.raises(GenkitError, match=".ply, .obj or .glb"):
        save_mesh(mesh, tmp_path / "m.stl")

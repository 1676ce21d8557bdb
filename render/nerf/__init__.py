"""Neural radiance fields with accelerated sampling: an Instant-NGP-style hash-grid field (``NGPField``),
Blender / nerfstudio scene readers, the ``genkit nerf train`` loop (occupancy-grid sampling, packed volume
rendering, accelerate), and turntable / mesh export."""

from genkit.render.nerf.datasets import SceneData, load_scene
from genkit.render.nerf.export import NerfMeshConfig, NerfRenderConfig, export_mesh, render_turntable
from genkit.render.nerf.field import NGPField
from genkit.render.nerf.trainer import (
    NerfTrainConfig,
    evaluate,
    load_field,
    render_image,
    render_rays,
    train_nerf,
)

__all__ = [
    "NGPField",
    "NerfMeshConfig",
    "NerfRenderConfig",
    "NerfTrainConfig",
    "SceneData",
    "evaluate",
    "export_mesh",
    "load_field",
    "load_scene",
    "render_image",
    "render_rays",
    "render_turntable",
    "train_nerf",
]

"""genkit.render: neural fields and avatars, with accelerated sampling.

Shared pieces (a pure-torch reference each; kernels in ``kernels/``, picked by ``backends``):

- ``encodings``: multi-resolution hash grid, spherical harmonics, ``trunc_exp``;
- ``estimators``: occupancy grid (``OccGridEstimator``) and uniform sampling, the field passed as a
  ``sigma_fn`` callback, as nerfacc does;
- ``volume``: packed volume rendering;
- ``geometry``: pinhole cameras and rays, poses, vertex normals; ``raster``: a z-buffer mesh rasterizer;
- ``mesh``: marching cubes to trimesh.

Products: ``genkit.render.nerf`` (radiance fields, ``genkit nerf``) and ``genkit.render.avatar`` (head
avatars, ``genkit avatar``).
"""

from genkit.render.backends import BACKENDS
from genkit.render.encodings import HashGridEncoding, spherical_harmonics, trunc_exp
from genkit.render.estimators import OccGridEstimator, ray_aabb_intersect, uniform_sampling
from genkit.render.geometry import camera_rays, euler, look_at, orbit_poses, vertex_normals
from genkit.render.mesh import extract_mesh, save_mesh
from genkit.render.raster import rasterize
from genkit.render.volume import (
    accumulate_along_rays,
    exclusive_sum_packed,
    pack_batched,
    render_weight_from_density,
    rendering,
)

__all__ = [
    "BACKENDS",
    "HashGridEncoding",
    "OccGridEstimator",
    "accumulate_along_rays",
    "camera_rays",
    "euler",
    "exclusive_sum_packed",
    "extract_mesh",
    "look_at",
    "orbit_poses",
    "pack_batched",
    "ray_aabb_intersect",
    "rasterize",
    "render_weight_from_density",
    "rendering",
    "save_mesh",
    "spherical_harmonics",
    "trunc_exp",
    "uniform_sampling",
    "vertex_normals",
]

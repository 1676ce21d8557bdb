"""Real-time head avatars from mesh-anchored hash-table blendshapes (Bai et al., CVPR 2024).

- ``head``: genkit's procedural parametric head and its "monocular video" dataset (``genkit avatar data``),
  in an open format that tracked face meshes (FLAME output) can fill too;
- ``model``: ``HashBlendshapeAvatar`` and its baselines ``GlobalHashBlendshape`` and ``BigMLPAvatar``, the
  two-level k-NN search, the mesh-shell sampler and ``render_frame``;
- ``trainer``: ``genkit avatar train``;
- ``drive``: expression codes -> a video (``genkit avatar render``).
"""

from genkit.render.avatar.drive import (
    AvatarRenderConfig,
    demo_sequence,
    read_expressions,
    render_avatar_video,
)
from genkit.render.avatar.head import (
    EXPRESSIONS,
    LIGHTS,
    HeadData,
    HeadDataConfig,
    ProceduralHead,
    load_head_split,
    make_head_dataset,
    render_ground_truth,
)
from genkit.render.avatar.model import (
    MODELS,
    NO_STAGES,
    BigMLPAvatar,
    FrameState,
    GlobalHashBlendshape,
    HashBlendshapeAvatar,
    KNNIndex,
    Stages,
    compile_field,
    knn_brute,
    render_frame,
    shell_samples,
)
from genkit.render.avatar.trainer import AvatarTrainConfig, evaluate, load_avatar, render_split, train_avatar

__all__ = [
    "EXPRESSIONS",
    "LIGHTS",
    "MODELS",
    "NO_STAGES",
    "AvatarRenderConfig",
    "AvatarTrainConfig",
    "BigMLPAvatar",
    "FrameState",
    "GlobalHashBlendshape",
    "HashBlendshapeAvatar",
    "HeadData",
    "HeadDataConfig",
    "KNNIndex",
    "ProceduralHead",
    "Stages",
    "compile_field",
    "demo_sequence",
    "evaluate",
    "knn_brute",
    "load_avatar",
    "load_head_split",
    "make_head_dataset",
    "read_expressions",
    "render_avatar_video",
    "render_frame",
    "render_ground_truth",
    "render_split",
    "shell_samples",
    "train_avatar",
]

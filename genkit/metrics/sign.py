"""Metrics of generated sign motion (``genkit.data.signs``), Guo et al.-style plus sign-specific ones.

- ``SignEvaluator``: trained from scratch on procedural sentences of every split (``genkit train
  sign-evaluator``): a motion encoder (temporal convolutions over root-relative joint positions and the
  expression: what a viewer sees, not the rotations that produce it) and a text encoder (the ordered
  glosses), aligned contrastively; and a sign classifier that reads one sign's frames, for
  back-translation.
- ``r_precision``: Guo's R-precision, top-1/2/3, each motion ranked against its own sentence and 31 others
  (batches of 32) by the distance of the embeddings. FID: ``genkit.metrics.scores.frechet_distance`` of the
  motion embeddings.
  ``diversity``: mean distance between random pairs of motion embeddings.
- ``back_translation``: the share of signs (each ``FRAMES_PER_SIGN`` window) the sign classifier reads as
  the sentence's gloss at that place.
- ``mpjpe``: mean per-joint position error (mm) against the canonical motion of the same sentence, body
  joints root-relative, hand joints wrist-relative (the handshape). ``dtw_mje``: the same joint error along
  the dynamic-time-warping alignment of the two sequences (timing differences forgiven).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from genkit.data.signs import FRAMES_PER_SIGN, GLOSSES, motion_joints, sentence_motion, to_features
from genkit.data.skeleton import JOINTS, NUM_JOINTS
from genkit.utils import reading

__all__ = [
    "SignEvaluator",
    "back_translation",
    "canonical_motions",
    "diversity",
    "dtw_mje",
    "evaluator_inputs",
    "load_sign_evaluator",
    "mpjpe",
    "r_precision",
]

BODY = list(range(22))
HANDS = list(range(25, 55))
_WRIST_OF = [JOINTS.index("left_wrist")] * 15 + [JOINTS.index("right_wrist")] * 15


def evaluator_inputs(motion: torch.Tensor) -> torch.Tensor:
    """(B, T, 340) features -> (B, T, 55*3 + 10): joint positions relative to the pelvis, and expression."""
    j = motion_joints(motion)
    j = j - j[..., :1, :]
    return torch.cat([j.flatten(-2), motion[..., NUM_JOINTS * 6 :]], -1)


def _trunk(dim_in: int, width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(dim_in, width, 5, padding=2),
        nn.SiLU(),
        nn.Conv1d(width, width, 5, padding=2),
        nn.SiLU(),
        nn.Conv1d(width, width, 3, padding=1),
        nn.SiLU(),
    )


class SignEvaluator(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        input_dim: int = NUM_JOINTS * 3 + 10,
        width: int = 128,
        embed_dim: int = 64,
        num_glosses: int = len(GLOSSES),
        words: int = 3,
    ):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_std", torch.ones(input_dim))
        self.motion_trunk = _trunk(input_dim, width)
        self.motion_head = nn.Linear(2 * width, embed_dim)
        self.sign_trunk = _trunk(input_dim, width)
        self.sign_head = nn.Linear(2 * width, num_glosses)
        self.gloss_embed = nn.Embedding(num_glosses, 32)
        self.text_head = nn.Sequential(nn.Linear(32 * words, width), nn.SiLU(), nn.Linear(width, embed_dim))

    def _pool(self, trunk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        h = trunk(((x - self.input_mean) / self.input_std).transpose(1, 2))
        return torch.cat([h.mean(-1), h.amax(-1)], -1)

    def embed_motion(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T, D) evaluator inputs -> (B, E) unit embeddings."""
        return F.normalize(self.motion_head(self._pool(self.motion_trunk, inputs)), dim=-1)

    def embed_text(self, glosses: torch.Tensor) -> torch.Tensor:
        """(B, words) gloss indices -> (B, E) unit embeddings (order matters)."""
        return F.normalize(self.text_head(self.gloss_embed(glosses).flatten(1)), dim=-1)

    def classify_signs(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T // FRAMES_PER_SIGN, glosses) logits, one per sign window."""
        windows = inputs.unflatten(1, (-1, FRAMES_PER_SIGN))
        logits = self.sign_head(self._pool(self.sign_trunk, windows.flatten(0, 1)))
        return logits.unflatten(0, windows.shape[:2])


def load_sign_evaluator(path: str | None = None, device: str | torch.device = "cpu") -> SignEvaluator:
    """The sign evaluator: the bundled one, or a folder of ``genkit train sign-evaluator``."""
    if path is None:
        from genkit.loading import bundled_path

        path = str(bundled_path("sign-evaluator"))
    with reading(f"could not load the sign evaluator from {path!r}", (Exception,)):
        return SignEvaluator.from_pretrained(path).to(device).float().eval()


def gloss_ids(captions: list[str]) -> torch.Tensor:
    return torch.tensor([[GLOSSES.index(w) for w in c.split()] for c in captions])


@torch.no_grad()
def r_precision(
    evaluator: SignEvaluator, motion_emb: torch.Tensor, captions: list[str], pool: int = 32, seed: int = 0
) -> list[float]:
    """Top-1/2/3 R-precision (Guo et al.): each motion ranked against its own sentence and ``pool - 1``
    other sentences drawn from every sentence of the language (so any number of motions can be scored)."""
    from genkit.data.signs import sentences

    every = [" ".join(x) for x in sentences("all")]
    g = torch.Generator().manual_seed(seed)
    hits = torch.zeros(3)
    for emb, caption in zip(motion_emb, captions, strict=True):
        others = [
            every[i] for i in torch.randperm(len(every), generator=g)[:pool].tolist() if every[i] != caption
        ]
        texts = evaluator.embed_text(gloss_ids([caption, *others[: pool - 1]]).to(evaluator.device)).cpu()
        dist = (texts - emb).norm(dim=-1)
        rank = int((dist < dist[0]).sum())
        hits += torch.tensor([rank < k for k in (1, 2, 3)], dtype=torch.float32)
    return (hits / len(captions)).tolist()


def diversity(emb: torch.Tensor, pairs: int = 300, seed: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randint(len(emb), (2, pairs), generator=g)
    return float((emb[i] - emb[j]).norm(dim=-1).mean())


@torch.no_grad()
def back_translation(evaluator: SignEvaluator, inputs: torch.Tensor, captions: list[str]) -> float:
    pred = evaluator.classify_signs(inputs).argmax(-1)
    return float((pred == gloss_ids(captions)).float().mean())


def canonical_motions(captions: list[str]) -> torch.Tensor:
    """(B, T, 340): the jitter-free procedural motion of each sentence (the ground truth)."""
    return torch.stack([to_features(*sentence_motion(tuple(c.split()))) for c in captions])


def _aligned(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(body root-relative, hands wrist-relative) joints (..., 22 / 30, 3)."""
    body = joints[..., BODY, :] - joints[..., :1, :]
    hands = joints[..., HANDS, :] - joints[..., _WRIST_OF, :]
    return body, hands


@torch.no_grad()
def mpjpe(motion: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Mean per-joint position error in mm, frame by frame: ``body`` and ``hands``."""
    (b1, h1), (b2, h2) = _aligned(motion_joints(motion)), _aligned(motion_joints(truth))
    return {
        "body": float((b1 - b2).norm(dim=-1).mean() * 1000),
        "hands": float((h1 - h2).norm(dim=-1).mean() * 1000),
    }


def _dtw(cost: np.ndarray) -> float:
    """Mean cost along the optimal monotone alignment path of a (T1, T2) cost matrix."""
    t1, t2 = cost.shape
    acc = np.full((t1 + 1, t2 + 1), np.inf)
    steps = np.zeros((t1 + 1, t2 + 1))
    acc[0, 0] = 0
    for i in range(1, t1 + 1):
        for j in range(1, t2 + 1):
            prev = [
                (acc[i - 1, j - 1], steps[i - 1, j - 1]),
                (acc[i - 1, j], steps[i - 1, j]),
                (acc[i, j - 1], steps[i, j - 1]),
            ]
            best = min(prev, key=lambda p: p[0])
            acc[i, j], steps[i, j] = best[0] + cost[i - 1, j - 1], best[1] + 1
    return float(acc[t1, t2] / steps[t1, t2])


@torch.no_grad()
def dtw_mje(motion: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Mean joint error (mm) along the DTW alignment of each generated and true sequence."""
    (b1, h1), (b2, h2) = _aligned(motion_joints(motion)), _aligned(motion_joints(truth))
    out = {}
    for name, x, y in (("body", b1, b2), ("hands", h1, h2)):
        cost = (x[:, :, None] - y[:, None]).norm(dim=-1).mean(-1) * 1000  # (B, T, T)
        out[name] = float(np.mean([_dtw(c.numpy()) for c in cost]))
    return out

"""``genkit train {tokenizer,vae,text2img,classifier,tiny-decoder,fpdm,video,video-classifier,view-prior,objects3d-classifier,sign,sign-evaluator} ...``: every part of the embedded models.

Each trainer runs on accelerate (``accelerate launch -m genkit train ...`` for several GPUs or nodes),
shows a progress bar with ETA, saves resumable checkpoints under ``OUT/checkpoints`` and resumes from the
newest one when started again with the same ``--out``.
"""

from __future__ import annotations

from genkit.cli._args import OneLineArgumentParser, add_dataclass_args, from_args
from genkit.training.classifier import ClassifierTrainConfig, train_classifier
from genkit.training.fpdm import FPDMTrainConfig, train_fpdm
from genkit.training.objects3d_classifier import Objects3DClassifierTrainConfig, train_objects3d_classifier
from genkit.training.sign import SignTrainConfig, train_sign
from genkit.training.sign_evaluator import SignEvaluatorTrainConfig, train_sign_evaluator
from genkit.training.text2img import Text2ImgTrainConfig, train_text2img
from genkit.training.tiny_decoder import TinyDecoderTrainConfig, train_tiny_decoder
from genkit.training.tokenizer import TokenizerTrainConfig, train_tokenizer
from genkit.training.vae import VAETrainConfig, train_vae
from genkit.training.video import VideoTrainConfig, train_video
from genkit.training.video_classifier import VideoClassifierTrainConfig, train_video_classifier
from genkit.training.view_prior import ViewPriorTrainConfig, train_view_prior

TRAINERS = {
    "tokenizer": (TokenizerTrainConfig, train_tokenizer, "learn the word-level tokenizer from the captions"),
    "vae": (VAETrainConfig, train_vae, "train the AutoencoderKL"),
    "text2img": (
        Text2ImgTrainConfig,
        train_text2img,
        "train the UNet and text encoder; writes a Stable Diffusion pipeline",
    ),
    "classifier": (
        ClassifierTrainConfig,
        train_classifier,
        "train the oracle classifier used by the metrics",
    ),
    "tiny-decoder": (
        TinyDecoderTrainConfig,
        train_tiny_decoder,
        "train a small decoder for a pipeline's latents (for fast one-step students)",
    ),
    "fpdm": (
        FPDMTrainConfig,
        train_fpdm,
        "train an FPDM transformer (or its DiT baseline, --arch dit); writes an FPDMPipeline",
    ),
    "video": (
        VideoTrainConfig,
        train_video,
        "train motion modules on a text-to-image pipeline; writes an AnimateDiffPipeline",
    ),
    "video-classifier": (
        VideoClassifierTrainConfig,
        train_video_classifier,
        "train the video network used by the video metrics",
    ),
    "view-prior": (
        ViewPriorTrainConfig,
        train_view_prior,
        "train the camera-conditioned prior of text-to-3D; writes a ViewConditionedPipeline",
    ),
    "objects3d-classifier": (
        Objects3DClassifierTrainConfig,
        train_objects3d_classifier,
        "train the classifier of 3-D views (shape, colour, front marker) used by the text-to-3D metrics",
    ),
    "sign": (
        SignTrainConfig,
        train_sign,
        "train the text-to-sign-motion diffusion model; writes a SignMotionPipeline",
    ),
    "sign-evaluator": (
        SignEvaluatorTrainConfig,
        train_sign_evaluator,
        "train the motion/text encoders and sign classifier used by the sign metrics",
    ),
}


def _runner(cfg_cls, fn):
    def run(ns) -> int:
        path = fn(from_args(cfg_cls, ns))
        print(f"wrote {path}")
        return 0

    return run


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model", description=__doc__)
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT", parser_class=OneLineArgumentParser)
    for name, (cfg_cls, fn, help_) in TRAINERS.items():
        q = what.add_parser(name, help=help_, description=help_)
        add_dataclass_args(q, cfg_cls)
        q.set_defaults(run=_runner(cfg_cls, fn))

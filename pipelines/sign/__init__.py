"""Text-to-sign-motion: a diffusion pipeline over SMPL-X-layout poses, and the score distillation of its
prior into Bezier motion curves."""

from genkit.pipelines.sign.pipeline_sign import SignMotionOutput, SignMotionPipeline

__all__ = ["SignMotionOutput", "SignMotionPipeline"]

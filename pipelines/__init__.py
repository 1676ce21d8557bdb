"""genkit.pipelines: diffusers-native pipelines.

- ``StableDiffusionPipeline`` (diffusers' own; ``genkit.pipelines.text2img`` assembles and loads it),
- ``FPDMPipeline``: Fixed Point Diffusion, with iteration reallocation and solution reuse,
- ``OneStepPipeline``: a distilled 1-4-step student,
- ``AnimateDiffPipeline`` (diffusers' own; ``genkit.pipelines.video`` loads it and generates clips).

``load_pipeline(name_or_path)`` (from :mod:`genkit.loading`) opens a bundled model or any such folder.
"""

from genkit.loading import load_pipeline
from genkit.pipelines.fpdm import FPDMPipeline, FPDMPipelineOutput, load_fpdm
from genkit.pipelines.one_step import OneStepPipeline, load_one_step
from genkit.pipelines.text2img import SCHEDULERS, build_text2img_pipeline, load_text2img
from genkit.pipelines.video import generate_clips, load_video

__all__ = [
    "SCHEDULERS",
    "FPDMPipeline",
    "FPDMPipelineOutput",
    "OneStepPipeline",
    "build_text2img_pipeline",
    "generate_clips",
    "load_fpdm",
    "load_one_step",
    "load_pipeline",
    "load_text2img",
    "load_video",
]

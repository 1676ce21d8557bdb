"""The view-conditioned text-to-image prior of genkit's text-to-3D (a Stable Diffusion pipeline plus a
camera encoder)."""

from genkit.pipelines.view_prior.pipeline_view_prior import ViewConditionedPipeline, view_states

__all__ = ["ViewConditionedPipeline", "view_states"]

"""Fixed Point Diffusion sampling: ``FPDMPipeline`` with iteration reallocation and solution reuse."""

from genkit.pipelines.fpdm.pipeline_fpdm import (
    ALLOCATIONS,
    FPDMPipeline,
    FPDMPipelineOutput,
    allocate_iterations,
    load_fpdm,
)

__all__ = ["ALLOCATIONS", "FPDMPipeline", "FPDMPipelineOutput", "allocate_iterations", "load_fpdm"]

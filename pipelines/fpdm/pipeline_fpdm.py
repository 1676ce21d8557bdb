"""FPDMPipeline: text-to-image with an FPDMTransformer2DModel and any diffusers scheduler.

Per model call the pipeline chooses how many fixed-point iterations to spend (``allocate_iterations``:
constant, increasing, decreasing, or an explicit list) and, with ``warm_start=True``, starts the
fixed-point solve from the previous call's solution. It returns, with the images, the block evaluations
and the true FLOPs spent (measured with ``torch.utils.flop_counter.FlopCounterMode``, so guidance
batching and early stopping are counted as they happen).

Examples:
    >>> pipe = FPDMPipeline(transformer=..., vae=..., text_encoder=..., tokenizer=..., scheduler=...)
    >>> out = pipe("a small red circle at the top left", num_inference_steps=25, iterations_per_step=6,
    ...            allocation="decreasing", warm_start=True, generator=torch.Generator().manual_seed(0))
    >>> out.images[0], out.block_evaluations, out.flops
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from torch.utils.flop_counter import FlopCounterMode

from genkit.models.text import tokenize

ALLOCATIONS = ("constant", "increasing", "decreasing")


def allocate_iterations(policy: str | Sequence[int], num_calls: int, iterations_per_call: int) -> list[int]:
    """Split a budget of ``num_calls * iterations_per_call`` fixed-point iterations over model calls.

    Calls are in sampling order (noisiest first). ``"increasing"`` gives the fewest iterations to the
    noisiest call and the most to the last (weights linspace(0.5, 1.5), as FPDM's LinearController);
    ``"decreasing"`` is the reverse. Every call gets at least one iteration and the total is exact
    (largest-remainder rounding). An explicit list is returned as is after checking it.
    """
    if num_calls <= 0:
        raise ValueError(f"number of model calls must be positive, got {num_calls}")
    if not isinstance(policy, str):
        iters = [int(n) for n in policy]
        if len(iters) != num_calls or min(iters) < 0:
            raise ValueError(
                f"an explicit allocation needs {num_calls} non-negative counts, got {list(policy)}"
            )
        return iters
    if policy not in ALLOCATIONS:
        raise ValueError(f"unknown allocation policy {policy!r}; expected one of {ALLOCATIONS} or a list")
    if iterations_per_call < 1:
        raise ValueError(f"iterations per call must be at least 1, got {iterations_per_call}")
    if policy == "constant":
        return [iterations_per_call] * num_calls
    r = np.linspace(0.5, 1.5, num_calls)
    extra = (num_calls * iterations_per_call - num_calls) * r / r.sum()
    base = np.floor(extra).astype(int)
    short = num_calls * (iterations_per_call - 1) - base.sum()
    base[np.argsort(-(extra - base), kind="stable")[:short]] += 1
    increasing = [1 + int(b) for b in base]
    return increasing if policy == "increasing" else increasing[::-1]


@dataclass
class FPDMPipelineOutput(BaseOutput):
    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    block_evaluations: int
    flops: float
    iterations: list[int]
    residuals: list[list[float]]


class FPDMPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->transformer->vae"

    def __init__(self, transformer, vae, text_encoder, tokenizer, scheduler):
        super().__init__()
        self.register_modules(
            transformer=transformer,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            scheduler=scheduler,
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        ids = tokenize(self.tokenizer, prompts)
        return self.text_encoder(ids.to(self.device))[0].to(self.transformer.dtype)

    def _flops_per_call(self, latents: torch.Tensor, t, ctx: torch.Tensor) -> tuple[float, float]:
        """(FLOPs of a call with 0 iterations, FLOPs of one iteration) for these shapes, measured."""
        counts = []
        for n in (0, 1):
            with FlopCounterMode(display=False) as fc:
                self.transformer(latents, t, ctx, num_iterations=n)
            counts.append(float(fc.get_total_flops()))
        return counts[0], counts[1] - counts[0]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 25,
        guidance_scale: float = 4.0,
        iterations_per_step: int | None = None,
        allocation: str | Sequence[int] = "constant",
        warm_start: bool = True,
        warm_start_weight: float = 1.0,
        solver: str = "picard",
        tol: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> FPDMPipelineOutput | tuple:
        """Generate images.

        Args:
            prompt: one prompt or a list.
            num_inference_steps: scheduler steps (a second-order scheduler calls the model more often;
                the allocation is over model calls).
            guidance_scale: classifier-free guidance; > 1 batches the unconditional and conditional calls.
            iterations_per_step: mean fixed-point iterations per call (default: the model's config).
            allocation: ``"constant"``, ``"increasing"``, ``"decreasing"`` or a list with one count per call.
            warm_start: start each solve from the previous call's solution (FPDM's reuse).
            warm_start_weight: mixing of the reused solution with the fresh pre-block output.
            solver / tol: fixed-point solver (``picard``, ``damped``, ``anderson``) and early-stop tolerance.
        """
        if num_inference_steps <= 0:
            raise ValueError(f"num_inference_steps must be positive, got {num_inference_steps}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        b = len(prompts)
        do_cfg = guidance_scale > 1.0
        ctx = self.encode_prompt(prompts)
        if do_cfg:
            ctx = torch.cat([self.encode_prompt([""] * b), ctx])

        cfg = self.transformer.config
        shape = (b, cfg.in_channels, cfg.sample_size, cfg.sample_size)
        if latents is None:
            latents = randn_tensor(
                shape, generator=generator, device=self.device, dtype=self.transformer.dtype
            )
        latents = latents * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        timesteps = self.scheduler.timesteps
        # A DiT baseline (no implicit layer) has no num_iterations: its allocation is moot.
        per_call = cfg.get("num_iterations", 1) if iterations_per_step is None else iterations_per_step
        iters = allocate_iterations(allocation, len(timesteps), per_call)

        model_in = torch.cat([latents] * 2) if do_cfg else latents
        fixed_cost, per_iteration = self._flops_per_call(model_in, timesteps[0], ctx)
        solution, evaluations, flops, residuals = None, 0, 0.0, []
        for i, t in enumerate(self.progress_bar(timesteps)):
            model_in = self.scheduler.scale_model_input(torch.cat([latents] * 2) if do_cfg else latents, t)
            out = self.transformer(
                model_in,
                t,
                ctx,
                num_iterations=iters[i],
                initial_solution=solution if warm_start else None,
                initial_solution_weight=warm_start_weight,
                solver=solver,
                tol=tol,
            )
            solution = out.solution
            evaluations += out.block_evaluations
            flops += fixed_cost + per_iteration * len(out.residuals)
            residuals.append(out.residuals)
            noise_pred = out.sample
            if do_cfg:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(noise_pred, t, latents).prev_sample

        if output_type == "latent":
            images = latents
        else:
            images = self.vae.decode(latents / self.vae.config.scaling_factor).sample
            images = self.image_processor.postprocess(images, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images, evaluations, flops, iters, residuals)
        return FPDMPipelineOutput(
            images=images, block_evaluations=evaluations, flops=flops, iterations=iters, residuals=residuals
        )


def load_fpdm(
    path: str | os.PathLike,
    scheduler: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> FPDMPipeline:
    """An ``FPDMPipeline`` folder on ``device`` in ``dtype`` (fp16 weights are upcast), with the named
    diffusers scheduler (``ddim``, ``dpm``, ``euler``; None keeps the saved one) and no progress bar."""
    # diffusers loads a component class named in model_index.json only once its module is imported
    import genkit.models.transformer_dit  # noqa: F401
    import genkit.models.transformer_fpdm  # noqa: F401
    from genkit.pipelines.text2img import set_scheduler

    pipe = set_scheduler(FPDMPipeline.from_pretrained(str(path)), scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype)

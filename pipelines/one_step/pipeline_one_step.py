"""OneStepPipeline: a distilled student that samples in 1-4 model calls, without guidance.

The student is the teacher's denoiser (a ``UNet2DConditionModel`` or a genkit transformer) fine-tuned by
``genkit distill``. It was trained at fixed timesteps, saved in the pipeline's config
(``student_timesteps``, e.g. ``[999]`` or ``[999, 749, 499, 249]``). Sampling is diffusers'
``LCMScheduler`` with those timesteps, as DMD2 samples in diffusers: at each timestep the student's output
is turned into a clean-sample estimate, which is re-noised to the next timestep (fresh noise) or returned.

Examples:
    >>> pipe = OneStepPipeline.from_pretrained("runs/distill-dmd/model")
    >>> pipe("a small red circle at the top left", generator=torch.Generator().manual_seed(0)).images[0]
"""

import inspect
import os

import numpy as np
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput, LCMScheduler
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import randn_tensor

from genkit.models.text import tokenize

MAX_STUDENT_STEPS = 4


def student_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """DMD2's student schedule: ``num_steps`` evenly spaced trailing timesteps, e.g. 4 -> [999, 749, 499,
    249], 1 -> [999]."""
    if not 1 <= num_steps <= MAX_STUDENT_STEPS:
        raise ValueError(f"a student takes 1 to {MAX_STUDENT_STEPS} steps, got {num_steps}")
    gap = num_train_timesteps // num_steps
    return [num_train_timesteps - 1 - i * gap for i in range(num_steps)]


def student_scheduler(config, num_steps: int) -> LCMScheduler:
    """An ``LCMScheduler`` from any DDPM-family scheduler config, whose original schedule is the student's
    (so ``set_timesteps`` with those timesteps does not warn)."""
    accepted = inspect.signature(LCMScheduler.__init__).parameters
    config = {k: v for k, v in dict(config).items() if k in accepted}  # drop e.g. DPM-Solver's own options
    return LCMScheduler.from_config(config, original_inference_steps=num_steps)


class OneStepPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->denoiser->vae"

    def __init__(
        self, denoiser, vae, text_encoder, tokenizer, scheduler, student_timesteps: list[int] | None = None
    ):
        super().__init__()
        ts = [int(t) for t in (student_timesteps or [999])]
        if not 1 <= len(ts) <= MAX_STUDENT_STEPS or ts != sorted(ts, reverse=True):
            raise ValueError(
                f"student_timesteps must be 1-{MAX_STUDENT_STEPS} decreasing timesteps, got {ts}"
            )
        self.register_modules(
            denoiser=denoiser, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
        )
        self.register_to_config(student_timesteps=ts)
        # an AutoencoderKL (the teacher's, or genkit train tiny-decoder's) or an AutoencoderTiny
        blocks = (
            getattr(self.vae.config, "block_out_channels", None) or self.vae.config.decoder_block_out_channels
        )
        self.vae_scale_factor = 2 ** (len(blocks) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        ids = tokenize(self.tokenizer, prompts)
        return self.text_encoder(ids.to(self.device))[0].to(self.denoiser.dtype)

    def timesteps_for(self, num_inference_steps: int | None) -> list[int]:
        """The saved timesteps, or ``num_inference_steps`` of them evenly picked (first and last kept)."""
        ts = list(self.config.student_timesteps)
        if num_inference_steps is None:
            return ts
        if not 1 <= num_inference_steps <= len(ts):
            raise ValueError(
                f"this student was trained for {len(ts)} step(s) at timesteps {ts}; "
                f"num_inference_steps must be 1..{len(ts)}, got {num_inference_steps}"
            )
        idx = np.round(np.linspace(0, len(ts) - 1, num_inference_steps)).astype(int)
        return [ts[i] for i in idx]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Generate images in ``num_inference_steps`` student calls (default: all saved timesteps).

        ``guidance_scale`` is accepted for drop-in use with the teachers' pipelines and ignored: the
        guidance was distilled into the student."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        ctx = self.encode_prompt(prompts)
        cfg = self.denoiser.config
        shape = (len(prompts), cfg.in_channels, cfg.sample_size, cfg.sample_size)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=self.device, dtype=self.denoiser.dtype)
        self.scheduler.set_timesteps(timesteps=self.timesteps_for(num_inference_steps), device=self.device)
        for t in self.progress_bar(self.scheduler.timesteps):
            pred = self.denoiser(latents, t, ctx).sample
            out = self.scheduler.step(pred, t, latents, generator=generator)
            latents = out.prev_sample
        latents = out.denoised  # the last clean-sample estimate
        if output_type == "latent":
            images = latents
        else:
            images = self.vae.decode(latents / self.vae.config.scaling_factor).sample
            images = self.image_processor.postprocess(images, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)


def load_one_step(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> OneStepPipeline:
    """A ``OneStepPipeline`` folder on ``device`` in ``dtype`` (fp16 weights are upcast), no progress bar."""
    import genkit.models.transformer_dit  # noqa: F401  (a transformer student's class must be importable)
    import genkit.models.transformer_fpdm  # noqa: F401

    pipe = OneStepPipeline.from_pretrained(str(path))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype)

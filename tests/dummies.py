"""Tiny random-weight components in diffusers' ``get_dummy_components`` style."""

import torch
from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel

from genkit.data.shapes import prompt_set
from genkit.models.presets import SCHEDULER_CONFIG, UNET_PRESETS, VAE_PRESETS
from genkit.models.text import build_text_encoder, train_tokenizer
from genkit.pipelines.text2img import build_text2img_pipeline

DUMMY_VAE = VAE_PRESETS["vae-dummy"]


def dummy_tokenizer():
    return train_tokenizer(prompt_set("all"), max_length=12)


def dummy_components(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    tokenizer = dummy_tokenizer()
    text_encoder = build_text_encoder(tokenizer, "clip-text-dummy").eval()
    unet = UNet2DConditionModel(**UNET_PRESETS["unet-dummy"]).eval()
    vae = AutoencoderKL(**DUMMY_VAE).eval()
    scheduler = DPMSolverMultistepScheduler.from_config(DDPMScheduler(**SCHEDULER_CONFIG).config)
    return dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)


def dummy_pipeline(seed: int = 0):
    pipe = build_text2img_pipeline(**dummy_components(seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def randomize_zero_init(model, contraction: float) -> None:
    """Give zero-initialised (adaLN-Zero, final) linear layers small random weights, as after training,
    and scale fc1_z so the FPDM implicit map contracts."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.weight.abs().sum() == 0:
                torch.nn.init.normal_(m.weight, std=0.05)
        model.inject_fc1_z.weight.mul_(contraction)

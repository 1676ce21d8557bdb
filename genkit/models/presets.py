"""Plain dicts of model configs, name -> keyword arguments of the diffusers / transformers class.

The ``*-shapes`` presets are the embedded default: small enough to train on 2 CPU cores in well under an
hour and to ship as a few MB of fp16 safetensors.
"""

# AutoencoderKL, 32x32x3 -> 16x16x4 (downsampling factor 2: two blocks). At factor 4 a small shape
# (about 6 px across) spans under two latent pixels and decodes as a blob, whatever the channel count.
VAE_PRESETS: dict[str, dict] = {
    "vae-shapes-f2": dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=32,
    ),
    # For tests: tiny and fast.
    "vae-dummy": dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    ),
}

# UNet2DConditionModel on 16x16 latents (size and channels set from the VAE at training time) with cross-attention to the text encoder's hidden states.
UNET_PRESETS: dict[str, dict] = {
    "unet-shapes-s": dict(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=32,
    ),
    # For tests: tiny and fast.
    "unet-dummy": dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    ),
}

# CLIPTextConfig keyword arguments (vocab size and special-token ids come from the tokenizer).
TEXT_ENCODER_PRESETS: dict[str, dict] = {
    "clip-text-shapes": dict(
        hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, projection_dim=64
    ),
    "clip-text-dummy": dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, projection_dim=32
    ),
}

# Stable Diffusion's scaled-linear betas rescaled to zero terminal SNR, with v-prediction and "trailing"
# timesteps (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed"). With SD's
# own schedule (terminal SNR 0.0047) a 16x16 latent keeps its quadrant-level layout at t=T, and the model
# learned to take left/right from the initial noise instead of the prompt.
SCHEDULER_CONFIG: dict = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    rescale_betas_zero_snr=True,
    prediction_type="v_prediction",
    timestep_spacing="trailing",
    clip_sample=False,
    steps_offset=1,  # unused with trailing spacing; diffusers' SD pipeline rewrites any other value
)

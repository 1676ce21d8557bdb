"""``genkit train tokenizer``: a word-level vocabulary learned from the procedural captions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genkit.data.shapes import attributes_at, sample_attributes
from genkit.models.text import train_tokenizer as _train
from genkit.utils import GenkitError, atomic_dir


@dataclass
class TokenizerTrainConfig:
    out: str = field(default="runs/tokenizer", metadata={"help": "folder for the saved tokenizer"})
    num_captions: int = field(default=20000, metadata={"help": "captions drawn from the train split"})
    max_length: int = field(default=16, metadata={"help": "tokens per prompt, <bos> and <eos> included"})
    seed: int = field(default=0, metadata={"help": "seed of the caption draw"})

    def __post_init__(self):
        if self.num_captions <= 0 or self.max_length < 4:
            raise GenkitError("num-captions must be positive and max-length at least 4")


def train_tokenizer(cfg: TokenizerTrainConfig) -> Path:
    attrs = sample_attributes(cfg.num_captions, np.random.default_rng([cfg.seed, 3]), "train")
    tokenizer = _train((attributes_at(attrs, i).caption() for i in range(cfg.num_captions)), cfg.max_length)
    out = Path(cfg.out)
    with atomic_dir(out) as tmp:
        tokenizer.save_pretrained(tmp)
    return out

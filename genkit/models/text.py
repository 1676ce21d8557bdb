"""The text side of the embedded model: a word-level tokenizer and a small CLIP text encoder.

Both are plain ``transformers`` objects (``PreTrainedTokenizerFast`` over a ``tokenizers`` WordLevel model,
``CLIPTextModel``), so they save with ``save_pretrained`` and load offline with ``from_pretrained``, and
diffusers' ``StableDiffusionPipeline`` treats them like SD's own CLIP tokenizer and encoder.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from genkit.models.presets import TEXT_ENCODER_PRESETS

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]


def train_tokenizer(texts: Iterable[str], max_length: int = 16) -> PreTrainedTokenizerFast:
    """Learn a word-level vocabulary from ``texts`` (lower-cased, split on whitespace and punctuation).

    Encodings are ``<bos> words... <eos>`` padded with ``<pad>`` to ``max_length``; unknown words map to
    ``<unk>``.
    """
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1))
    bos, eos = tok.token_to_id("<bos>"), tok.token_to_id("<eos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", bos), ("<eos>", eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def build_text_encoder(tokenizer, preset: str = "clip-text-shapes") -> CLIPTextModel:
    """A randomly initialised ``CLIPTextModel`` sized for ``tokenizer`` (vocabulary, length, special ids)."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TEXT_ENCODER_PRESETS[preset],
    )
    return CLIPTextModel(config)


def tokenize(tokenizer, texts: list[str]):
    """Token ids (len(texts), model_max_length), padded and truncated as diffusers' SD pipeline does."""
    return tokenizer(
        texts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids

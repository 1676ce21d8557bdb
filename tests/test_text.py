from transformers import AutoTokenizer, CLIPTextModel

from genkit.models.text import build_text_encoder, train_tokenizer


def test_tokenizer_round_trip_offline(tmp_path):
    tok = train_tokenizer(
        ["a small red circle at the top left", "a large blue square in the center"], max_length=12
    )
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    ids = again("A small RED circle", padding="max_length", max_length=again.model_max_length).input_ids
    assert again.model_max_length == 12 and len(ids) == 12
    assert (
        ids[0] == again.bos_token_id and ids[5] == again.eos_token_id and ids[6:] == [again.pad_token_id] * 6
    )
    assert again.convert_ids_to_tokens(ids[1:5]) == ["a", "small", "red", "circle"]
    assert again("a green cat").input_ids[2:4] == [again.unk_token_id] * 2


def test_text_encoder_matches_tokenizer_and_reloads(tmp_path):
    tok = train_tokenizer(["a small red circle"], max_length=8)
    enc = build_text_encoder(tok, "clip-text-dummy").eval()
    assert enc.config.vocab_size == len(tok) and enc.config.max_position_embeddings == 8
    ids = tok(["a small red circle"], padding="max_length", max_length=8, return_tensors="pt").input_ids
    out = enc(ids)[0]
    enc.save_pretrained(tmp_path)
    again = CLIPTextModel.from_pretrained(tmp_path).eval()
    assert out.shape == (1, 8, 32)
    assert (again(ids)[0] - out).abs().max() < 1e-6

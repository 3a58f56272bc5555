"""A VAE over token sequences: a SMILES VAE for molecules, and the same model for any
item-layout sequence data (names, words).

Model (Bowman et al. 2016, "Generating Sentences from a Continuous Space";
Gomez-Bombarelli et al. 2018, "Automatic Chemical Design Using a Data-Driven Continuous
Representation of Molecules"; the MOSES VAE, Polykovskiy et al. 2020):

* encoder ``q(z|x) = N(mu, diag sigma^2)``: a (bidirectional) GRU reads the whole row;
  the final state of each direction gives ``mu`` and ``log sigma^2``;
* decoder ``p(x|z) = prod_t p(x_t | x_<t, z)`` for ``t = 2..L``: a GRU started from
  ``tanh(W z)`` and fed ``[embed(x_{t-1}), z]`` at every step, so ``z`` cannot fade;
* prior ``p(z) = N(0, I)``.

Rows are in the sequence family's layout (``<bos> tokens <eos> <pad>...`` for items,
plain token windows for running text) and, as for the language models, the first token
is given: ``log_prob`` bounds ``log p(x_2..x_L | x_1)``, comparable with an LSTM's exact
value. Both GRUs run on packed sequences (the backward encoder direction must start at
each row's real end), and the output layer and loss see no ``<pad>`` position.

Training minimises ``recon + w(step) * KL`` with the KL weight annealed linearly from 0 to
``kl_max`` (Bowman et al. 2016), optional free bits and word dropout; the step counter is
a buffer, so checkpoints carry the schedule and a resumed run is bit-identical.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..torch_model import TorchGenerativeModel
from ...errors import DataError
from ...progress import tick
from ...registry import MODELS
from ..sequence import sampling
from ..sequence.sampling import mask_never_next
from ..sequence.lm import SequenceLM
from ...data.tokenizers import BOS, BOS_ID, EOS_ID, PAD_ID
from .config import SeqVAEConfig

LOG_2PI = math.log(2 * math.pi)


def row_lengths(x: torch.Tensor) -> torch.Tensor:
    """Tokens of each row ``(B, T)`` up to and including its last non-``<pad>`` token, ``(B,)``."""
    pos = torch.arange(1, x.shape[1] + 1, device=x.device).expand_as(x)
    return (pos * (x != PAD_ID)).amax(1)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between ``z0`` and ``z1`` ``(d,)`` at ``t (S,)`` -> ``(S, d)``.

    Under a Gaussian prior, points on the straight line between two codes have a smaller
    norm than typical draws; the great-circle path keeps it (Shoemake 1985; White 2016,
    "Sampling Generative Networks"). Falls back to the straight line for (anti)parallel codes.
    """
    a, b, t = z0.double(), z1.double(), t.double()[:, None]
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    if a.norm() == 0 or b.norm() == 0 or torch.sin(omega) < 1e-6:
        return ((1 - t) * a + t * b).to(z0.dtype)
    return ((torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)).to(z0.dtype)


class _Decoding:
    """The decoder conditioned on codes ``z (B, d)``, seen through the method the sequence
    family's ``sampling.generate`` drives (``_next_logits``), so the VAE decodes with the
    same temperature / top-k / nucleus rules as the language models."""

    def __init__(self, vae: "SeqVAE", z: torch.Tensor):
        self.vae, self.z = vae, z

    def _next_logits(self, ids: torch.Tensor, state=None):
        hidden, used = (self.vae._initial_state(self.z), 0) if state is None else state
        out, hidden = self.vae._decoder_run(ids[:, used:], self.z, hidden)   # only the new tokens
        return self.vae.head(out[:, -1]), (hidden, ids.shape[1])


@MODELS.register("seqvae", aliases=("smiles-vae",))
class SeqVAE(TorchGenerativeModel):
    """Sequence VAE (a SMILES VAE): GRU encoder to a Gaussian code, GRU decoder fed the code.

    ``forward`` returns the annealed negative ELBO in nats per sequence (in eval mode the
    plain negative ELBO); ``log_prob`` is the IWAE bound (Burda et al. 2016) with ``k``
    samples; ``sample`` decodes prior draws into token rows of the data's layout.

    Example:
        >>> vae = SeqVAE(latent_dim=16, dec_hidden=128, dec_layers=1).fit("names")
        >>> vae.samples_to_text(vae.sample(5, generator=torch.Generator().manual_seed(0)))
        >>> vae.samples_to_text(vae.interpolate("anna", "robert", 6))
    """

    model_type = "seqvae"
    config_class = SeqVAEConfig
    log_prob_kind = "lower_bound"
    log_prob_options = ("k", "generator", "batch_tokens")
    declared_tags = {"text_output": True, "per_token_nll": True, "latent": True, "interpolation": True}

    def _config_tags(self) -> dict[str, Any]:
        from ...data.tokenizers import token_modality

        out = super()._config_tags()
        out.pop("sample_shape", None)
        out["modality"] = token_modality(self.config)
        return out

    # ---------------------------------------------------------------- tokenizer and data
    tokenizer_ = SequenceLM.tokenizer_  # the tokenizer stored in the config (same rules)

    def data_defaults(self, dataset: Any) -> dict[str, Any]:
        # the sequence family's rules: a kind="sequence" Dataset whose meta holds the tokenizer
        out = SequenceLM.data_defaults(self, dataset)
        if len(dataset) and int(row_lengths(dataset.x).min()) < 2:
            raise DataError(f"{dataset.name}: every row needs at least two tokens (e.g. <bos> <eos>)")
        return out

    def to_ids(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Strings -> rows ``(B, T)`` in the training layout (``<bos> tokens <eos> <pad>...``
        for item data), padded to the longest."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("to_ids needs at least one string")
        items = self.config.start == BOS
        rows = [[BOS_ID] * items + self.tokenizer_.encode(t) + [EOS_ID] * items for t in texts]
        x = torch.full((len(rows), max(map(len, rows))), PAD_ID, dtype=torch.long)
        for r, row in enumerate(rows):
            x[r, :len(row)] = torch.tensor(row, dtype=torch.long)
        return x

    def _as_ids(self, x: Any) -> torch.Tensor:
        if hasattr(x, "x") and hasattr(x, "kind"):
            x = x.x
        if isinstance(x, str) or (isinstance(x, (list, tuple)) and x and isinstance(x[0], str)):
            x = self.to_ids(x)
        x = torch.as_tensor(x)
        x = x[None] if x.dim() == 1 else x
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"expected token ids (N, T) or strings, got {tuple(x.shape)} {x.dtype}")
        V = len(self.config.vocab)
        if len(x) and (int(x.max()) >= V or int(x.min()) < 0):
            raise ValueError(f"token ids must be in [0, {V})")
        if len(x) and int(row_lengths(x).min()) < 2:
            raise ValueError("every row needs at least two tokens (e.g. <bos> <eos>)")
        return x.long()

    def samples_to_text(self, x: torch.Tensor) -> list[str]:
        """Decode rows of ids, cutting each at its first ``<eos>``; specials are dropped."""
        out = []
        for row in torch.as_tensor(x).tolist():
            if EOS_ID in row:
                row = row[:row.index(EOS_ID)]
            out.append(self.tokenizer_.decode(row))
        return out

    # ---------------------------------------------------------------- layers
    def build(self) -> None:
        c = self.config
        V, E, d = len(c.vocab), c.embed_dim, c.latent_dim
        dirs = 2 if c.bidirectional else 1
        self.embed = nn.Embedding(V, E)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.GRU(E, c.enc_hidden, c.enc_layers, batch_first=True, bidirectional=c.bidirectional,
                              dropout=c.dropout if c.enc_layers > 1 else 0.0)
        self.posterior = nn.Linear(dirs * c.enc_hidden, 2 * d)
        parts = 2 if c.dec_cell == "lstm" else 1  # an LSTM starts from (h, c)
        self.z_to_state = nn.Linear(d, parts * c.dec_layers * c.dec_hidden)
        cell = nn.LSTM if c.dec_cell == "lstm" else nn.GRU
        self.decoder = cell(E + d, c.dec_hidden, c.dec_layers, batch_first=True,
                            dropout=c.dropout if c.dec_layers > 1 else 0.0)
        self.head = nn.Linear(c.dec_hidden, V)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        if c.tie_weights:
            self.head.weight = self.embed.weight
        # optimizer steps taken: drives the KL annealing and is saved with the weights
        self.register_buffer("kl_step", torch.zeros((), dtype=torch.long))

    def _posterior(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.drop(self.embed(x))                                              # (B, T, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)                                                 # (layers*dirs, B, H)
        dirs = 2 if self.config.bidirectional else 1
        h = h.view(self.config.enc_layers, dirs, len(x), -1)[-1]                    # last layer (dirs, B, H)
        mu, logvar = self.posterior(h.transpose(0, 1).reshape(len(x), -1)).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)                                            # (B, d) each

    def _initial_state(self, z: torch.Tensor):
        c = self.config
        h = torch.tanh(self.z_to_state(z)).view(len(z), -1, c.dec_hidden)
        h = h.transpose(0, 1).contiguous()                                          # (parts*layers, B, H)
        if c.dec_cell == "lstm":
            return h[:c.dec_layers].contiguous(), h[c.dec_layers:].contiguous()     # (h0, c0)
        return h

    def on_fit_start(self, train_data: Any) -> None:
        """Start the decoder from ``config.decoder_from`` (a fresh fit only)."""
        if self.config.decoder_from:
            from ...base import load

            self.init_decoder(load(self.config.decoder_from))

    @torch.no_grad()
    def init_decoder(self, lm: Any) -> None:
        """Copy a trained recurrent language model (genlab's ``lstm`` / ``gru``) into the
        decoder: embedding, recurrent layers, output layer. The decoder's input weights
        for ``z`` and the map from ``z`` to the initial state start at zero, so the VAE
        begins exactly as the language model (which ignores ``z``) and training teaches it
        to use the code. Raises ``ValueError`` naming what differs."""
        from ..sequence.recurrent import RecurrentLM

        c = self.config
        if not isinstance(lm, RecurrentLM) or not lm.built:
            raise ValueError(f"init_decoder needs a trained recurrent language model (lstm/gru), "
                             f"got {type(lm).__name__}")
        lc = lm.config
        want = {"dec_cell": (c.dec_cell, lm.cell), "dec_hidden": (c.dec_hidden, lc.hidden),
                "dec_layers": (c.dec_layers, lc.layers), "embed_dim": (c.embed_dim, lc.embed_dim or lc.hidden)}
        bad = {k: v for k, (mine, v) in want.items() if mine != v}
        if bad:
            raise ValueError("the language model's decoder shape differs: set "
                             + ", ".join(f"{k}={v}" for k, v in bad.items()))
        if tuple(lc.vocab) != tuple(c.vocab) or lc.tokenizer != c.tokenizer:
            raise ValueError("the language model was trained with another vocabulary or tokenizer "
                             "than this data's; train both on the same data set")
        E = lm.embed.weight.shape[1]
        self.embed.weight.copy_(lm.embed.weight)
        for name, p in self.decoder.named_parameters():
            src = getattr(lm.rnn, name)
            if name == "weight_ih_l0":  # inputs: [token embedding | z]
                p.zero_()
                p[:, :E].copy_(src)
            else:
                p.copy_(src)
        self.head.weight.copy_(lm.head.weight)
        self.head.bias.copy_(lm.head.bias)
        self.z_to_state.weight.zero_()
        self.z_to_state.bias.zero_()

    def _decoder_input(self, ids: torch.Tensor, z: torch.Tensor, *, word_dropout: float = 0.0) -> torch.Tensor:
        emb = self.embed(ids)                                                       # (B, L, E)
        if word_dropout > 0:  # blank whole tokens (never the first), Bowman et al. 2016
            keep = torch.rand(ids.shape, device=ids.device) >= word_dropout
            keep[:, 0] = True
            emb = emb * keep[..., None]
        return torch.cat([self.drop(emb), z[:, None].expand(-1, ids.shape[1], -1)], -1)

    def _decoder_run(self, ids: torch.Tensor, z: torch.Tensor, hidden: torch.Tensor):
        out, hidden = self.decoder(self._decoder_input(ids, z), hidden)
        return self.drop(out), hidden

    def _log_px(self, x: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x_2..x_L | x_1, z)`` per row ``(B,)`` (teacher forcing, packed)."""
        steps = (lengths - 1).cpu()
        wd = self.config.word_dropout if self.training else 0.0
        inp = self._decoder_input(x[:, :-1], z, word_dropout=wd)                    # (B, T-1, E+d)
        packed = pack_padded_sequence(inp, steps, batch_first=True, enforce_sorted=False)
        out, _ = self.decoder(packed, self._initial_state(z))
        logits = mask_never_next(self.head(self.drop(out.data)))                    # (sum L-1, V)
        tgt = pack_padded_sequence(x[:, 1:], steps, batch_first=True, enforce_sorted=False).data
        nll = F.cross_entropy(logits, tgt, reduction="none", ignore_index=PAD_ID)
        return -pad_packed_sequence(out._replace(data=nll), batch_first=True)[0].sum(1)

    # ---------------------------------------------------------------- training
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Negative ELBO in nats per sequence, with parts ``recon``, ``kl``, ``elbo`` (and
        ``kl_weight`` in training). Training weighs the KL by the annealing schedule (and
        free bits); evaluation returns the plain negative ELBO, a bound comparable across steps.
        With a small ``kl_max`` that bound can rise while samples improve: early-stop on
        ``val_recon`` then (``--monitor=val_recon``)."""
        x = batch["x"]
        lengths = row_lengths(x)
        mu, logvar = self._posterior(x, lengths)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = self._log_px(x, lengths, z)                                           # (B,)
        kl_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)                      # (B, d)
        kl = kl_dim.sum(1)
        out = {"recon": -rec.mean().detach(), "kl": kl.mean().detach(), "elbo": (rec - kl).mean().detach()}
        if self.training and torch.is_grad_enabled():
            c = self.config
            w = c.kl_weight(int(self.kl_step))
            kl_term = kl_dim.mean(0).clamp_min(c.free_bits).sum() if c.free_bits > 0 else kl.mean()
            with torch.no_grad():
                self.kl_step += 1
            return {"loss": -rec.mean() + w * kl_term, **out, "kl_weight": torch.tensor(w)}
        return {"loss": -(rec - kl).mean(), **out}

    # ---------------------------------------------------------------- likelihood
    @torch.no_grad()
    def log_prob(self, x: Any, *, k: int | None = None, generator: torch.Generator | None = None,
                 batch_tokens: int = 65536) -> torch.Tensor:
        """IWAE bound ``log (1/k) sum_i p(x, z_i) / q(z_i|x)`` on ``log p(x_2..x_L | x_1)``
        per row, in nats (``k=1``: the ELBO); it tightens as ``k`` grows.

        Args:
            x: token rows ``(N, T)`` (or a sequence Dataset, or strings).
            k: importance samples (default ``config.iwae_k``).
            generator: seeds the draws of ``z`` (reproducible estimates).
            batch_tokens: decoder tokens per chunk (memory bound).
        Returns:
            ``(N,)`` float64.
        """
        self.check_fitted()
        x = self._as_ids(x)
        k = int(k or self.config.iwae_k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        was = self.training
        self.eval()
        chunk = max(1, batch_tokens // (k * x.shape[1]))
        out = []
        try:
            for s in range(0, len(x), chunk):
                xb = x[s:s + chunk]
                lengths = row_lengths(xb)
                mu, logvar = self._posterior(xb, lengths)                           # (b, d)
                eps = self._noise(k, *mu.shape, generator=generator)                # (k, b, d)
                z = mu + (0.5 * logvar).exp() * eps
                log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)  # (k, b)
                log_pz = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
                log_px = self._log_px(xb.repeat(k, 1), lengths.repeat(k), z.reshape(-1, mu.shape[1]))
                log_w = log_px.view(k, -1).double() + (log_pz - log_q).double()
                out.append(torch.logsumexp(log_w, 0) - math.log(k))
                tick(len(xb))  # the caller's progress, if any (genlab.progress.task)
        finally:
            self.train(was)
        return torch.cat(out)

    def nll_per_token(self, x: Any, *, k: int | None = None, generator: torch.Generator | None = None) -> float:
        """Upper bound on the mean NLL in nats per predicted token (from ``log_prob``;
        seeded with 0 unless ``generator`` is given, so run metrics are reproducible)."""
        x = self._as_ids(x)
        g = torch.Generator().manual_seed(0) if generator is None else generator
        return float(-self.log_prob(x, k=k, generator=g).sum()) / int((x[:, 1:] != PAD_ID).sum())

    # ---------------------------------------------------------------- latent space
    @torch.no_grad()
    def encode(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance ``(N, latent_dim)`` of token rows or strings
        (evaluation mode, no gradient)."""
        self.check_fitted()
        x = self._as_ids(x)
        was = self.training
        self.eval()
        try:
            parts = [self._posterior(x[s:s + 1024], row_lengths(x[s:s + 1024])) for s in range(0, len(x), 1024)]
        finally:
            self.train(was)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    @torch.no_grad()
    def decode(self, z: torch.Tensor, *, temperature: float = 0.0, generator: torch.Generator | None = None,
               max_len: int | None = None, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
        """Token rows ``(N, max_len)`` for codes ``z (N, latent_dim)``, batched.

        Args:
            z: codes (a single ``(latent_dim,)`` code gives one row).
            temperature: 0 (default) takes the most likely token at each step (greedy);
                > 0 samples with that temperature.
            generator: seeds the token draws.
            max_len: row length including the start token (default: the training length).
            top_k, top_p: restrict the draws as in ``genlab.models.sequence.sampling``.
        Returns:
            int64 rows in the data's layout; rows that ended are ``<pad>``-filled.
        """
        self.check_fitted()
        z = torch.as_tensor(z, dtype=torch.float32)
        z = z[None] if z.dim() == 1 else z
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim or not len(z):
            raise ValueError(f"z must have shape (N, {self.config.latent_dim}), got {tuple(z.shape)}")
        start = self.config.start
        first = [BOS_ID] if start == BOS else self.tokenizer_.encode(start)
        prompt = torch.tensor(first, dtype=torch.long, device=z.device).expand(len(z), -1).clone()
        max_len = self.config.data_shape[0] if max_len is None else int(max_len)
        if max_len <= prompt.shape[1]:
            raise ValueError(f"max_len={max_len} leaves no room after the start token")
        was = self.training
        self.eval()
        try:
            return sampling.generate(_Decoding(self, z), prompt, max_len, temperature=temperature,
                                     top_k=top_k, top_p=top_p, generator=generator)
        finally:
            self.train(was)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, latent_dim)`` from the prior ``N(0, I)``."""
        return self._noise(int(n), self.config.latent_dim, generator=generator)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0,
               max_len: int | None = None, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
        """Decode ``n`` prior draws ``z ~ N(0, I)`` into token rows.

        Args:
            n: number of sequences.
            generator: seeds both the codes and the token draws (bit-reproducible).
            temperature: of the token draws (0: greedy decoding of each code).
            max_len: row length (default: the training length).
            top_k, top_p: top-k / nucleus restriction of the token draws.
        Returns:
            ``(n, max_len)`` int64 rows ``<bos> tokens <eos> <pad>...``; ``samples_to_text``
            turns them into strings.
        """
        self.check_fitted()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        sampling.check_sampling_args(temperature, top_k, top_p)
        return self.decode(self.sample_latent(n, generator=generator), temperature=temperature,
                           generator=generator, max_len=max_len, top_k=top_k, top_p=top_p)

    @torch.no_grad()
    def interpolate(self, a: Any, b: Any, steps: int = 8, *, method: str = "slerp", temperature: float = 0.0,
                    generator: torch.Generator | None = None, max_len: int | None = None) -> torch.Tensor:
        """Decode ``steps`` codes on the path between the posterior means of ``a`` and ``b``.

        Args:
            a, b: two items: strings (e.g. SMILES) or token rows ``(T,)``.
            steps: points on the path, endpoints included (>= 2).
            method: ``"slerp"`` (great circle, the default) or ``"lerp"`` (straight line).
            temperature: 0 (greedy) or a sampling temperature for decoding.
        Returns:
            ``(steps, max_len)`` token rows; the first decodes ``a``'s code, the last ``b``'s.
        """
        if not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
        if method not in ("slerp", "lerp"):
            raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
        z0, z1 = (self.encode(v)[0][0] for v in (a, b))
        t = torch.linspace(0, 1, steps)
        z = slerp(z0, z1, t) if method == "slerp" else (1 - t[:, None]) * z0 + t[:, None] * z1
        return self.decode(z, temperature=temperature, generator=generator, max_len=max_len)

    @torch.no_grad()
    def reconstruction_accuracy(self, x: Any) -> float:
        """Share of rows whose greedy decoding from the posterior mean gives back the same
        text (the reconstruction accuracy of Gomez-Bombarelli et al. 2018)."""
        x = self._as_ids(x)
        mu, _ = self.encode(x)
        rec = self.decode(mu, max_len=max(x.shape[1], self.config.data_shape[0]))
        return sum(a == b for a, b in zip(self.samples_to_text(rec), self.samples_to_text(x))) / len(x)

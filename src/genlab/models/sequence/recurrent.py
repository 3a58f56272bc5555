"""Recurrent language models: Elman RNN, LSTM, GRU (registered as ``rnn``, ``lstm``, ``gru``).

Embedding -> dropout -> stacked recurrent layers (dropout between layers) -> dropout ->
linear output, optionally tied to the embedding (Press & Wolf 2017, "Using the Output
Embedding to Improve Language Models"). The recurrent layers are torch's fused
``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``.

Truncated back-propagation through time (``bptt``) inside the window-based trainer: the
trainer hands the model shuffled windows of ``T`` tokens; with ``bptt=k`` the model runs
each window in chunks of ``k`` steps, carrying the hidden state from chunk to chunk but
detaching it, so the state sees the whole window while gradients flow at most ``k`` steps
back (Williams & Peng 1990). Long windows (e.g. ``T=513, bptt=128``) thus give the
carried-state training of char-rnn without an order-dependent data stream, which keeps
the trainer's shuffling, resume and early stopping unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from ...registry import MODELS
from .config import RecurrentConfig
from .lm import SequenceLM

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _detach(state):
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _select(state, index: torch.Tensor):
    if isinstance(state, tuple):
        return tuple(s[:, index] for s in state)
    return state[:, index]


class RecurrentLM(SequenceLM):
    """A stacked recurrent language model; ``cell`` (the model type) picks RNN/LSTM/GRU."""

    config_class = RecurrentConfig
    cell = "lstm"

    def build(self) -> None:
        c = self.config
        V, E = len(c.vocab), c.embed_dim or c.hidden
        self.embed = nn.Embedding(V, E)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = _CELLS[self.cell](E, c.hidden, c.layers, batch_first=True,
                                     dropout=c.dropout if c.layers > 1 else 0.0)
        self.head = nn.Linear(c.hidden, V)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.head.bias)
        if c.tie_weights:
            self.head.weight = self.embed.weight
        else:
            nn.init.uniform_(self.head.weight, -0.1, 0.1)

    def _run(self, inp: torch.Tensor, state=None):
        """Logits ``(B, L, V)`` for tokens ``inp (B, L)`` starting from ``state``."""
        h = self.drop(self.embed(inp))                                  # (B, L, E)
        if h.device.type == "cpu" and torch.is_autocast_enabled("cpu") \
                and torch.get_autocast_dtype("cpu") == torch.float16:
            # oneDNN has no float16 recurrent kernels on the CPU: the recurrence runs in
            # float32 there (the rest of the network still autocasts)
            with torch.autocast("cpu", enabled=False):
                out, state = self.rnn(h.float(), state)
        else:
            out, state = self.rnn(h, state)                             # (B, L, H)
        return self.head(self.drop(out)), state

    def _logits(self, inp: torch.Tensor) -> torch.Tensor:
        bptt = self.config.bptt
        if bptt is None or bptt >= inp.shape[1] or not torch.is_grad_enabled():
            return self._run(inp)[0]
        chunks, state = [], None
        for s in range(0, inp.shape[1], bptt):  # truncated BPTT: carry the state, cut the gradient
            logits, state = self._run(inp[:, s:s + bptt], state)
            state = _detach(state)
            chunks.append(logits)
        return torch.cat(chunks, 1)

    def _next_logits(self, ids: torch.Tensor, state=None):
        hidden, used = (None, 0) if state is None else state
        logits, hidden = self._run(ids[:, used:], hidden)               # only the new tokens
        return logits[:, -1], (hidden, ids.shape[1])

    def _reorder_state(self, state, index: torch.Tensor):
        hidden, used = state
        return _select(hidden, index), used


@MODELS.register("lstm")
class LSTM(RecurrentLM):
    """LSTM language model (Hochreiter & Schmidhuber 1997): text, names, music."""

    model_type = "lstm"
    cell = "lstm"


@MODELS.register("gru")
class GRU(RecurrentLM):
    """GRU language model (Cho et al. 2014)."""

    model_type = "gru"
    cell = "gru"


@MODELS.register("rnn")
class RNN(RecurrentLM):
    """Vanilla (Elman, tanh) RNN language model."""

    model_type = "rnn"
    cell = "rnn"

"""A small causal Transformer language model (registered as ``transformer``).

GPT-style (Radford et al. 2019; the layout of nanoGPT): learned token and position
embeddings, pre-LayerNorm blocks ``x + attn(ln(x))``, ``x + mlp(ln(x))``, a final
LayerNorm and an output layer tied to the token embedding. Attention is torch's
``scaled_dot_product_attention``.

Generation keeps a key/value cache per block: each new token attends to the cached keys
and values instead of recomputing the prefix (O(L) per token instead of O(L^2)). Past
``context`` tokens the window slides; as positions then shift, the model recomputes from
the last ``context`` tokens, exactly as the uncached path does, so both give the same tokens.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import MODELS
from .config import TransformerConfig
from .lm import SequenceLM


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache=None):
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, L, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d)
        past = 0
        if cache is not None:
            past = cache[0].shape[2]
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)   # (B, h, S, d)
        p = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=L > 1)
        else:  # new queries see the whole past and the causal part of the new tokens
            S = k.shape[2]
            mask = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, L, D)
        return self.drop(self.proj(y)), (k, v)


class Block(nn.Module):
    def __init__(self, d: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, cache=None):
        a, kv = self.attn(self.ln1(x), cache)
        x = x + a
        return x + self.mlp(self.ln2(x)), kv


@MODELS.register("transformer", aliases=("gpt",))
class Transformer(SequenceLM):
    """Small causal Transformer language model (pre-LN, learned positions, KV cache)."""

    model_type = "transformer"
    config_class = TransformerConfig

    @property
    def context(self) -> int:
        return self.config.context or self.config.data_shape[0]

    def build(self) -> None:
        c = self.config
        V = len(c.vocab)
        self.tok = nn.Embedding(V, c.d_model)
        self.pos = nn.Embedding(self.context, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.d_model, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, V, bias=False)
        for name, p in self.named_parameters():  # GPT-2 initialisation
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * c.layers) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        if c.tie_weights:
            self.head.weight = self.tok.weight

    def _run(self, inp: torch.Tensor, caches=None, start: int = 0):
        """Logits ``(B, L, V)`` of tokens ``inp`` at positions ``start..start+L-1``."""
        L = inp.shape[1]
        if start + L > self.context:
            raise ValueError(f"sequence of {start + L} tokens exceeds the context of {self.context}")
        h = self.drop(self.tok(inp) + self.pos(torch.arange(start, start + L, device=inp.device)))  # (B, L, D)
        new = []
        for i, block in enumerate(self.blocks):
            h, kv = block(h, None if caches is None else caches[i])
            new.append(kv)
        return self.head(self.ln_f(h)), new

    def _logits(self, inp: torch.Tensor) -> torch.Tensor:
        ctx = self.context
        if inp.shape[1] <= ctx or torch.is_grad_enabled():
            return self._run(inp)[0]
        # scoring past the context: each later token sees the last `ctx` tokens, exactly
        # as in generation (a sliding window; slow, but only for long evaluations)
        head = self._run(inp[:, :ctx])[0]
        tail = [self._run(inp[:, t - ctx + 1:t + 1])[0][:, -1:] for t in range(ctx, inp.shape[1])]
        return torch.cat([head, *tail], 1)

    def _next_logits(self, ids: torch.Tensor, state=None):
        L = ids.shape[1]
        if state is None or L > self.context:  # fresh, or the window slid: recompute
            logits, caches = self._run(ids[:, -self.context:])
        else:
            caches, used = state
            logits, caches = self._run(ids[:, used:], caches, start=used)
        return logits[:, -1], (caches, L)

    def _reorder_state(self, state, index: torch.Tensor):
        caches, used = state
        return [(k[index], v[index]) for k, v in caches], used

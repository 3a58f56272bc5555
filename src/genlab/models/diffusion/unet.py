"""Denoising networks: a U-Net sized from the image shape, and a residual MLP for tables.

The U-Net follows Ho et al. (2020) as refined by Nichol & Dhariwal (2021): a sinusoidal
time embedding through a two-layer MLP, residual blocks with GroupNorm whose second norm is
modulated by the embedding (scale and shift), self-attention at low resolutions, stride-2
convolutions down and nearest-neighbour upsampling + convolution up, skip connections
between the two paths, and zero-initialised output layers (every residual branch starts
as the identity). Class labels enter as a learned embedding added to the time embedding;
index ``num_classes`` is the "no label" token classifier-free guidance trains with.

Text enters two ways (``text_conditioning``), both from a text encoder's per-token states
``ctx (B, L, D)`` with their padding mask and its pooled vector ``(B, D)``: by
cross-attention of the pixels over the tokens after every self-attention (Rombach et al.
2022, the Stable Diffusion way), and by FiLM: the pooled vector, projected, is added to the
time embedding that scales and shifts every residual block (Perez et al. 2018). A learned
"null" token is always attendable and a learned null vector replaces the pooled one for a
row whose mask is empty: that row is the unconditional model classifier-free guidance
needs, and no attention ever runs over nothing.

Its depth comes from the data: a level is added while both sides are even and halve to at
least 4 pixels (8x8 -> 8, 4; 28x28 -> 28, 14, 7; 32x32 -> 32, 16, 8, 4), at most four.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features ``[cos(t w_i), sin(t w_i)]`` of (fractional) steps ``t``:
    ``(B,)`` -> ``(B, dim)``, ``w_i = max_period^(-i / (dim/2))``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], 1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def groups_for(ch: int) -> int:
    """GroupNorm groups: about four channels a group, at most 32, dividing ``ch``."""
    g = max(1, min(32, ch // 4))
    while ch % g:
        g -= 1
    return g


def _zero(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


def unet_levels(hw: Sequence[int], max_levels: int = 4) -> int:
    """How many resolutions the U-Net has for images of ``hw`` (see the module doc)."""
    h, w = int(hw[0]), int(hw[1])
    levels = 1
    while levels < max_levels and h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= 4:
        h, w, levels = h // 2, w // 2, levels + 1
    return levels


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups_for(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(groups_for(cout), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, 1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map (pre-norm, residual)."""

    def __init__(self, ch: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups_for(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class CrossAttention(nn.Module):
    """Multi-head attention of a feature map's pixels (queries) over text tokens (keys and
    values), pre-norm and residual with a zero-initialised output: ``(x, ctx, mask) -> x'``
    with ``ctx (B, L, ctx_dim)`` and ``mask (B, L)`` true where a token is."""

    def __init__(self, ch: int, ctx_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups_for(ch), ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.kv = nn.Linear(ctx_dim, 2 * ch)
        self.proj = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hd = c // self.heads
        q = self.q(self.norm(x)).reshape(b, self.heads, hd, h * w).transpose(-1, -2)
        k, v = self.kv(ctx).reshape(b, -1, 2, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """The residual blocks (and attention) of one resolution on one path."""

    def __init__(self, cins: Sequence[int], cout: int, emb_dim: int, dropout: float, attention: bool, heads: int,
                 ctx_dim: int = 0):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(c, cout, emb_dim, dropout) for c in cins)
        self.attn = nn.ModuleList(SelfAttention(cout, heads) if attention else nn.Identity() for _ in cins)
        self.cross = (nn.ModuleList(CrossAttention(cout, ctx_dim, heads) for _ in cins)
                      if (attention and ctx_dim) else None)

    def run(self, i: int, h: torch.Tensor, emb: torch.Tensor, text: "tuple[torch.Tensor, torch.Tensor] | None"):
        """Block ``i`` of the level, its self-attention and its cross-attention over ``text``."""
        h = self.attn[i](self.blocks[i](h, emb))
        if self.cross is not None and text is not None:
            h = self.cross[i](h, *text)
        return h


class TextEncoder(nn.Module):
    """A small Transformer over caption token ids, trained with the denoiser: ``ids (B, L)``
    (0 = padding) -> ``(states (B, L, dim), mask (B, L), pooled (B, dim))``, pooled = the
    masked mean of the states. Pre-norm layers, learned positions up to ``max_len``."""

    def __init__(self, vocab_size: int, *, dim: int = 64, layers: int = 2, heads: int = 4, max_len: int = 32):
        super().__init__()
        self.max_len = max_len
        self.tok = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = ids[:, :self.max_len]
        mask = ids != 0
        # an empty caption still lets its first position attend (to itself): no softmax over nothing
        attend = mask.clone()
        attend[:, 0] = True
        h = self.tok(ids) + self.pos[:ids.shape[1]]
        h = self.norm(self.layers(h, src_key_padding_mask=~attend))
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        return h, mask, pooled


TEXT_CONDITIONING = ("cross-attention", "film", "both")


class TextConditioning(nn.Module):
    """What a denoiser does with text features: normalises the tokens for cross-attention
    (with the null token prepended) and projects the pooled vector for FiLM (the null
    vector where a row's mask is empty). ``mode``: ``cross-attention``, ``film`` or ``both``."""

    def __init__(self, context_dim: int, emb_dim: int, mode: str):
        super().__init__()
        if mode not in TEXT_CONDITIONING:
            raise ValueError(f"text_conditioning must be one of {', '.join(TEXT_CONDITIONING)}, got {mode!r}")
        self.mode = mode
        self.cross = mode in ("cross-attention", "both")
        self.film = mode in ("film", "both")
        if self.cross:
            self.ctx = nn.LayerNorm(context_dim)
            self.null_token = nn.Parameter(torch.zeros(1, 1, context_dim))
            nn.init.normal_(self.null_token, std=0.02)
        if self.film:
            self.pool = nn.Linear(context_dim, emb_dim)
            self.null_pooled = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, ctx: torch.Tensor, mask: torch.Tensor, pooled: torch.Tensor
                ) -> tuple["tuple[torch.Tensor, torch.Tensor] | None", torch.Tensor | None]:
        """``((tokens, mask) for cross-attention or None, embedding to add or None)``."""
        mask = mask.bool()
        cond = mask.any(1)
        tokens = None
        if self.cross:
            proj = self.ctx(ctx)
            null = self.null_token.expand(len(ctx), 1, -1).to(proj.dtype)
            tokens = (torch.cat([null, proj], 1),
                      torch.cat([torch.ones_like(mask[:, :1]), mask], 1))
        emb = None
        if self.film:
            emb = torch.where(cond[:, None], self.pool(pooled), self.null_pooled.to(pooled.dtype))
        return tokens, emb


class UNet(nn.Module):
    """``net(x_t, t, y=None) -> output`` of ``x_t``'s shape.

    Args:
        shape: ``(C, H, W)`` of one image.
        channels: channels at full resolution.
        mult: channel multiplier per level (default ``(1, 2, 2, 2)`` cut to the levels).
        blocks: residual blocks per level on the way down (one more on the way up).
        attention_res: self-attention at the lower levels (never the full resolution,
            where it costs most) whose smaller side is at most this, and in the middle
            (0: none).
        heads: attention heads (channels must divide by it).
        dropout: in the residual blocks.
        num_classes: > 0 adds a label embedding (``num_classes + 1`` rows: the last is
            "no label").
        context_dim: > 0 takes text features of this width (``ctx``, ``ctx_mask``,
            ``pooled`` in ``forward``; see the module doc).
        text_conditioning: ``cross-attention`` (at the attention levels and the middle),
            ``film`` or ``both``.
        text_vocab: > 0 also holds a ``TextEncoder`` over this many token ids, trained
            with the network (``text_dim`` wide, ``text_layers`` deep, ``text_len``
            positions); its states are the context (``context_dim`` is then ``text_dim``).
    """

    def __init__(self, shape: Sequence[int], *, channels: int = 32, mult: Sequence[int] = (),
                 blocks: int = 1, attention_res: int = 8, heads: int = 4, dropout: float = 0.0,
                 num_classes: int = 0, context_dim: int = 0, text_conditioning: str = "cross-attention",
                 text_vocab: int = 0, text_dim: int = 64, text_layers: int = 2, text_len: int = 32):
        super().__init__()
        c_in, h, w = (int(s) for s in shape)
        n = unet_levels((h, w))
        mult = tuple(mult) or (1, 2, 2, 2)[:n]
        if len(mult) < n:
            mult = mult + (mult[-1],) * (n - len(mult))
        mult = mult[:n]
        chs = [channels * m for m in mult]
        emb_dim = 4 * channels
        self.channels, self.num_classes = channels, num_classes
        self.time = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None
        self.text_encoder = None
        if text_vocab > 0:
            self.text_encoder = TextEncoder(text_vocab, dim=text_dim, layers=text_layers, max_len=text_len)
            context_dim = text_dim
        self.text = None
        cross = 0  # the context width cross-attention reads (0: none)
        if context_dim > 0:
            if attention_res <= 0 and text_conditioning != "film":
                raise ValueError("cross-attention on text needs attention levels (attention_res > 0); "
                                 "use text_conditioning='film' without them")
            self.text = TextConditioning(context_dim, emb_dim, text_conditioning)
            cross = context_dim if self.text.cross else 0
        self.context_dim = context_dim
        self.conv_in = nn.Conv2d(c_in, channels, 3, padding=1)
        sizes = [min(h, w) // 2 ** i for i in range(n)]
        skips = [channels]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        cur = channels
        for i, c in enumerate(chs):
            cins = [cur] + [c] * (blocks - 1)
            self.down.append(Level(cins, c, emb_dim, dropout, i > 0 and sizes[i] <= attention_res, heads, cross))
            skips += [c] * blocks
            cur = c
            if i < n - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1 = ResBlock(cur, cur, emb_dim, dropout)
        self.mid_attn = SelfAttention(cur, heads) if attention_res > 0 else nn.Identity()
        self.mid_cross = CrossAttention(cur, cross, heads) if (cross and attention_res > 0) else None
        self.mid2 = ResBlock(cur, cur, emb_dim, dropout)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(n)):
            c = chs[i]
            cins = []
            for _ in range(blocks + 1):
                cins.append(cur + skips.pop())
                cur = c
            self.up.append(Level(cins, c, emb_dim, dropout, i > 0 and sizes[i] <= attention_res, heads, cross))
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(groups_for(cur), cur)
        self.conv_out = _zero(nn.Conv2d(cur, c_in, 3, padding=1))

    def encode_text(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ctx, ctx_mask, pooled)`` of caption token ids by the network's own text encoder."""
        if self.text_encoder is None:
            raise ValueError("this network has no text encoder of its own")
        return self.text_encoder(ids)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                ctx: torch.Tensor | None = None, ctx_mask: torch.Tensor | None = None,
                pooled: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.channels).to(x.dtype))
        if self.label is not None:
            if y is None:  # no label: the "unconditional" row
                y = torch.full((len(x),), self.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.label(y)
        text = None
        if self.text is not None:
            if ctx is None:  # no text: every row unconditional
                ctx = x.new_zeros(len(x), 1, self.context_dim)
                ctx_mask = torch.zeros(len(x), 1, dtype=torch.bool, device=x.device)
                pooled = ctx[:, 0]
            text, film = self.text(ctx.to(x.dtype), ctx_mask, pooled.to(x.dtype))
            if film is not None:
                emb = emb + film
        h = self.conv_in(x)
        hs = [h]
        for i, level in enumerate(self.down):
            for b in range(len(level.blocks)):
                h = level.run(b, h, emb, text)
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid_attn(self.mid1(h, emb))
        if self.mid_cross is not None and text is not None:
            h = self.mid_cross(h, *text)
        h = self.mid2(h, emb)
        for j, level in enumerate(self.up):
            for b in range(len(level.blocks)):
                h = level.run(b, torch.cat([h, hs.pop()], 1), emb, text)
            if j < len(self.upsample):
                skip = hs[-1]
                h = self.upsample[j](F.interpolate(h, size=skip.shape[-2:], mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class MLPDenoiser(nn.Module):
    """``net(x_t, t, y=None)`` for flat rows ``(B, D)``: residual MLP blocks (LayerNorm,
    SiLU, Linear) with the time (and label) embedding added to each block's input."""

    def __init__(self, dim: int, *, hidden: int = 256, depth: int = 3, dropout: float = 0.0,
                 num_classes: int = 0):
        super().__init__()
        self.hidden, self.num_classes = hidden, num_classes
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(num_classes + 1, hidden) if num_classes > 0 else None
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                          nn.Dropout(dropout), nn.Linear(hidden, hidden)) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), _zero(nn.Linear(hidden, dim)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.hidden).to(x.dtype))
        if self.label is not None:
            if y is None:
                y = torch.full((len(x),), self.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.label(y)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h + emb)
        return self.out(h)

"""Lossy compression with an autoencoder: the code is the compressed image.

The encoder maps an image to ``latent_dim`` real numbers; each is uniformly quantised
to ``bits`` bits over a per-dimension range ``[low, high]``, so one image costs
``latent_dim * bits`` bits against ``8 * numel`` bits for 8-bit pixels. The decoder maps
the dequantised code back to an image; quality is the PSNR of that reconstruction.
This is the plain "autoencoder as a learned transform code" of Hinton & Salakhutdinov
(2006) with scalar quantisation after training (no entropy coding, no rate term in the
training loss as in Balle et al. 2017), so the bit rate is fixed by ``latent_dim`` and
``bits``.

``compress`` / ``decompress`` give a real byte stream (codes bit-packed, no pickle).
"""
from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import torch

from ..metrics.functional import psnr
from ..registry import PIPELINES
from .denoising import ReconstructionPipeline, _finite_mean

MAGIC = b"GLAC"  # genlab autoencoder code
FORMAT = 1
_HEADER = struct.Struct("<4sBBHI")  # magic, format, bits, latent_dim, n


@PIPELINES.register("compression")
class Compression(ReconstructionPipeline):
    """Compress images to quantised autoencoder codes.

    The quantisation range of each latent dimension is set by ``fit_range(train_x)``
    (min/max, or ``quantile``/``1 - quantile`` quantiles of the training codes; no
    gradient training). Until it is called, every ``__call__``/``compress`` uses the
    min/max of its own batch's codes; that range then travels in the byte stream header.

    Example:
        >>> comp = Compression(Autoencoder(latent_dim=16).fit("digits"), bits=6)
        >>> comp.fit_range(train.x)
        >>> blob = comp.compress(test.x[:10]); x_hat = comp.decompress(blob)
        >>> comp.evaluate(test.x)     # bits_per_image 96, psnr_db ...

    Args:
        model: a fitted Autoencoder or unconditional VAE (posterior mean as the code).
        bits: bits per latent dimension, 1..16.
    """

    def __init__(self, model: Any, bits: int = 8):
        super().__init__(model)
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
            raise ValueError(f"bits must be an integer in 1..16, got {bits!r}")
        self.bits = int(bits)
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None

    @property
    def levels(self) -> int:
        return 2 ** self.bits

    @property
    def fitted(self) -> bool:
        return self.low is not None

    # -- range
    def fit_range(self, train_x: Any, *, quantile: float = 0.0) -> "Compression":
        """Set each latent dimension's quantisation range from training codes.

        Args:
            train_x: ``(N, *data_shape)`` training examples (or a ``Dataset``).
            quantile: 0 uses min/max; e.g. 0.001 uses the 0.1% and 99.9% quantiles
                (robust to outliers; codes outside are clamped).
        Returns:
            self
        """
        if not 0 <= quantile < 0.5:
            raise ValueError(f"quantile must be in [0, 0.5), got {quantile!r}")
        z = self.encode(train_x)
        if quantile > 0:
            q = torch.tensor([quantile, 1 - quantile])
            low, high = torch.quantile(z.double(), q.double(), dim=0).float()
        else:
            low, high = z.min(0).values, z.max(0).values
        self.low, self.high = _widen(low, high)
        return self

    def _range(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fitted:
            return self.low, self.high  # type: ignore[return-value]
        return _widen(z.min(0).values, z.max(0).values)

    # -- quantisation
    def quantize(self, z: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, d)`` -> integers in ``0 .. 2**bits - 1`` (uint8 for <= 8 bits,
        else int32), uniform over ``[low, high]``; values outside are clamped."""
        t = ((z - low) / (high - low)).clamp(0, 1)
        q = torch.round(t * (self.levels - 1))
        return q.to(torch.uint8 if self.bits <= 8 else torch.int32)

    def dequantize(self, q: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Integers from ``quantize`` -> the real codes at the centres of their levels."""
        return low + q.float() / (self.levels - 1) * (high - low)

    # -- the pipeline
    def __call__(self, x: Any) -> dict[str, torch.Tensor]:
        """Encode, quantise and decode.

        Args:
            x: ``(B, *data_shape)``.
        Returns:
            ``{"codes": (B, latent_dim) uint8/int32, "x_hat": (B, *data_shape),
            "low": (latent_dim,), "high": (latent_dim,)}`` (the range used).
        """
        z = self.encode(x)
        low, high = self._range(z)
        codes = self.quantize(z, low, high)
        return {"codes": codes, "x_hat": self.decode(self.dequantize(codes, low, high)),
                "low": low, "high": high}

    def compress(self, x: Any) -> bytes:
        """A byte stream of ``x``: header (format, bits, latent_dim, count), the range as
        float32, then the codes bit-packed at ``bits`` bits each."""
        out = self(x)
        codes = out["codes"].numpy().astype(np.uint32)  # (n, d)
        n, d = codes.shape
        shifts = np.arange(self.bits - 1, -1, -1, dtype=np.uint32)
        bitplane = ((codes.reshape(-1, 1) >> shifts) & 1).astype(np.uint8)  # (n*d, bits)
        header = _HEADER.pack(MAGIC, FORMAT, self.bits, d, n)
        rng = np.stack([out["low"].numpy(), out["high"].numpy()]).astype("<f4").tobytes()
        return header + rng + np.packbits(bitplane.reshape(-1)).tobytes()

    def decompress(self, data: bytes) -> torch.Tensor:
        """Reconstructions ``(n, *data_shape)`` from ``compress``'s bytes."""
        data = bytes(data)
        if len(data) < _HEADER.size or data[:4] != MAGIC:
            raise ValueError("not a genlab compressed stream (bad magic): pass bytes made by "
                             "Compression.compress")
        _, fmt, bits, d, n = _HEADER.unpack_from(data)
        if fmt != FORMAT:
            raise ValueError(f"compressed stream has format {fmt}; this genlab reads {FORMAT}")
        if d != self.latent_dim:
            raise ValueError(f"stream holds {d}-dimensional codes but the model's latent_dim "
                             f"is {self.latent_dim}: decompress with the model that compressed it")
        if bits != self.bits:
            raise ValueError(f"stream was written with bits={bits}, this pipeline has "
                             f"bits={self.bits}")
        off = _HEADER.size
        need = off + 8 * d + math.ceil(n * d * bits / 8)
        if len(data) != need:
            raise ValueError(f"compressed stream is {len(data)} bytes, expected {need}: "
                             "it is truncated or damaged")
        rng = np.frombuffer(data, dtype="<f4", count=2 * d, offset=off).reshape(2, d)
        low, high = (torch.from_numpy(r.astype(np.float32).copy()) for r in rng)
        packed = np.frombuffer(data, dtype=np.uint8, offset=off + 8 * d)
        bitplane = np.unpackbits(packed, count=n * d * bits).reshape(n * d, bits)
        weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.int64)
        ints = (bitplane.astype(np.int64) @ weights).reshape(n, d)
        codes = torch.from_numpy(ints).to(torch.uint8 if bits <= 8 else torch.int32)
        return self.decode(self.dequantize(codes, low, high))

    def evaluate(self, x: Any, *, data_range: float = 1.0) -> dict[str, float]:
        """Rate and distortion on ``x``.

        Args:
            x: ``(B, *data_shape)`` examples in ``[0, data_range]`` (or a ``Dataset``).
            data_range: signal range for PSNR (1 for images in ``[0, 1]``).
        Returns:
            ``bits_per_image`` (``latent_dim * bits``; the per-stream range header is
            not counted), ``raw_bits_per_image`` (``8 * numel``, 8-bit pixels),
            ``compression_ratio`` (raw / coded), ``psnr_db`` (mean PSNR of the quantised
            reconstruction), ``psnr_unquantized_db`` (of ``decode(encode(x))``), and
            ``bits``, ``latent_dim``.
        """
        x = self._check_x(x)
        coded = self.latent_dim * self.bits
        raw = 8 * math.prod(self.data_shape)
        x_hat = self(x)["x_hat"]
        return {
            "bits_per_image": float(coded),
            "raw_bits_per_image": float(raw),
            "compression_ratio": raw / coded,
            "psnr_db": float(_finite_mean(psnr(x_hat, x, data_range=data_range))),
            "psnr_unquantized_db": float(_finite_mean(psnr(self.reconstruct(x), x,
                                                           data_range=data_range))),
            "bits": float(self.bits),
            "latent_dim": float(self.latent_dim),
        }


def _widen(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Give constant dimensions a tiny non-zero range so quantisation never divides by 0;
    the range is stored in float32, as it is written to the stream."""
    low, high = low.float().clone(), high.float().clone()
    flat = (high - low) <= 1e-6 * (1 + low.abs())
    high[flat] = low[flat] + 1e-3 * (1 + low[flat].abs())
    return low, high

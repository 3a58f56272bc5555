"""The ``"mrf"`` genlab model: a translation-invariant Potts/Ising grid prior for images,
learned by pseudo-likelihood (Besag, 1975), sampled by checkerboard block Gibbs; plus
MRF image denoising (Geman & Geman, 1984) and texture synthesis (Cross & Jain, 1983).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...base import CONFIG_FILE, Config, GenerativeModel
from ...errors import DataError, ModelFormatError
from ...registry import MODELS
from .mrf import PairwiseGraph
from .sampling import make_rng


@dataclasses.dataclass(frozen=True)
class MRFConfig(Config):
    """Args:
        n_states: grey levels K (2 = binary / Ising-like Potts).
        max_iter: L-BFGS iterations of pseudo-likelihood.
        l2: weight decay on the couplings.
        gibbs_sweeps: block-Gibbs sweeps per ``sample`` call.
        data_shape: ``(1, H, W)``, set by the first ``fit``.
    """

    n_states: int = 2
    max_iter: int = 100
    l2: float = 1e-4
    gibbs_sweeps: int = 200
    data_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.n_states < 2:
            raise ValueError(f"n_states must be >= 2, got {self.n_states}")
        if self.max_iter < 1 or self.gibbs_sweeps < 1:
            raise ValueError("max_iter and gibbs_sweeps must be >= 1")


def _levels(x: Any, k: int) -> np.ndarray:
    """Images ``(N, 1, H, W)`` in [0, 1] (tensor/array/Dataset) -> levels ``(N, H, W)``."""
    if hasattr(x, "kind") and hasattr(x, "x"):
        if x.kind != "image":
            raise DataError(f"an MRF image model learns from images, got {x.kind} data")
        x = x.x
    a = x.numpy() if torch.is_tensor(x) else np.asarray(x)
    if np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() >= k:
            raise DataError(f"integer images must hold levels 0..{k - 1}")
        return a.reshape(len(a), *a.shape[-2:]).astype(np.int64)
    if a.ndim == 4 and a.shape[1] != 1:
        raise DataError(f"an MRF image model takes greyscale (N, 1, H, W) images, got {a.shape}")
    if a.ndim not in (3, 4) or not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise DataError(f"expected images (N, 1, H, W) in [0, 1], got shape {a.shape}")
    return np.rint(a.reshape(len(a), *a.shape[-2:]) * (k - 1)).astype(np.int64)


def pseudo_likelihood_fit(levels: np.ndarray, k: int, *, max_iter: int = 100, l2: float = 1e-4
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Tied grid parameters (bias ``(K,)``, couplings ``(2, K, K)``) maximising the mean
    log pseudo-likelihood ``sum_i log p(x_i | x_neighbours)`` of the images."""
    oh = torch.nn.functional.one_hot(torch.as_tensor(levels), k).permute(0, 3, 1, 2).double()
    bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    w = torch.zeros(2, k, k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([bias, w], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        lg = bias.view(1, k, 1, 1).expand_as(oh).clone()
        lg[..., 1:] += torch.einsum("nlhw,lk->nkhw", oh[..., :-1], w[0])   # left neighbour
        lg[..., :-1] += torch.einsum("nlhw,kl->nkhw", oh[..., 1:], w[0])   # right neighbour
        lg[..., 1:, :] += torch.einsum("nlhw,lk->nkhw", oh[..., :-1, :], w[1])  # up
        lg[..., :-1, :] += torch.einsum("nlhw,kl->nkhw", oh[..., 1:, :], w[1])  # down
        loss = -(torch.log_softmax(lg, 1) * oh).sum(1).mean() + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    b = bias.detach().numpy()
    return b - b.mean(), w.detach().numpy()


@MODELS.register("mrf", aliases=("ising", "potts"))
class GridMRF(GenerativeModel):
    """A Potts grid MRF over images (see the module docstring).

    ``log_prob`` is unnormalised (``log p~``); ``log_prob(x, normalized=True)`` subtracts
    the exact ``log Z`` where the grid's treewidth allows (e.g. 8x8 digits).
    """

    model_type = "mrf"
    config_class = MRFConfig
    log_prob_kind = "unnormalized"
    log_prob_options = ("normalized",)
    declared_tags = {"modality": "image", "self_scoring": True, "trained_by": "estimator", "structure": "grid"}
    fit_hint = "fit(images) or genlab.load(dir)"

    def __init__(self, config: MRFConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.bias_: np.ndarray | None = None
        self.weights_: np.ndarray | None = None
        self._logz: float | None = None

    @property
    def fitted(self) -> bool:
        """Whether the grid parameters exist (``check_fitted`` reads it)."""
        return self.bias_ is not None

    def graph(self, h: int | None = None, w: int | None = None) -> PairwiseGraph:
        self.check_fitted()
        _, hh, ww = self.config.data_shape
        return PairwiseGraph.grid(h or hh, w or ww, self.bias_, self.weights_)

    def fit(self, data: Any, train: Any = None, *, val: Any = None, run_dir: Any = None,
            resume: bool = False) -> "GridMRF":
        """Pseudo-likelihood fit on images ``(N, 1, H, W)`` in [0, 1] (quantised to K levels)."""
        lv = _levels(data, self.config.n_states)
        shape = (1, *lv.shape[1:])
        if self.config.data_shape is not None and tuple(self.config.data_shape) != shape:
            raise DataError(f"the model is for images {tuple(self.config.data_shape)}, got {shape}")
        self.config = self.config.replace(data_shape=shape)
        self.bias_, self.weights_ = pseudo_likelihood_fit(lv, self.config.n_states,
                                                          max_iter=self.config.max_iter, l2=self.config.l2)
        self._logz = None
        return self

    def sample(self, n: int, *, generator: Any = None, sweeps: int | None = None) -> torch.Tensor:
        """``n`` images ``(n, 1, H, W)`` in [0, 1] by checkerboard block Gibbs.

        ``sweeps``: Gibbs sweeps, a positive integer (default: ``config.gibbs_sweeps``).
        """
        self.check_fitted()
        if sweeps is not None and (isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 1):
            raise ValueError(f"sweeps must be a positive integer, got {sweeps!r}")
        g = self.graph()
        x = g.gibbs(n, sweeps or self.config.gibbs_sweeps, make_rng(generator))
        return torch.from_numpy(x.reshape(n, *self.config.data_shape) / (self.config.n_states - 1)).float()

    def log_prob(self, x: Any, *, normalized: bool = False) -> torch.Tensor:
        """``log p~(x)`` per image, a float64 tensor ``(N,)``; ``normalized=True``
        subtracts the exact ``log Z`` (by variable elimination over the grid)."""
        self.check_fitted()
        lv = _levels(x, self.config.n_states)
        lp = self.graph().log_potential(lv.reshape(len(lv), -1))
        if normalized:
            if self._logz is None:
                self._logz = self.graph().log_partition()
            lp = lp - self._logz
        return torch.from_numpy(lp)

    def denoise(self, noisy: Any, flip_prob: float, *, sweeps: int = 50, chains: int = 16,
                generator: Any = None, method: str = "gibbs") -> np.ndarray:
        """Posterior-marginal denoising of images corrupted by symmetric level flips with
        probability ``flip_prob``: the MRF prior times ``p(y_i | x_i)``; returns levels
        ``(N, H, W)`` (the per-pixel posterior mode, by Gibbs averaging or loopy BP)."""
        return denoise(self.graph(*_levels(noisy, self.config.n_states).shape[1:]), _levels(
            noisy, self.config.n_states), flip_prob, sweeps=sweeps, chains=chains,
            rng=make_rng(generator), method=method)

    def evaluate(self, test: Any) -> dict[str, float]:
        lp = self.log_prob(test, normalized=True).numpy()
        d = int(np.prod(self.config.data_shape))
        return {"n_test": float(len(lp)), "nll_nats": float(-lp.mean()),
                "bits_per_dim": float(-lp.mean() / (d * np.log(2)))}

    def _saved_tensors(self) -> dict[str, np.ndarray]:
        return {"bias": self.bias_, "weights": np.ascontiguousarray(self.weights_)}

    @classmethod
    def _from_saved(cls, config: MRFConfig, header: dict[str, Any], weights: Any) -> "GridMRF":
        if config.data_shape is None:
            raise ModelFormatError(f"{Path(header['_dir']) / CONFIG_FILE}: the model was saved unfitted")
        k = config.n_states
        arr = weights.arrays({"bias": (k,), "weights": (2, k, k)})
        m = cls(config)
        m.bias_, m.weights_ = arr["bias"], arr["weights"]
        return m


def denoise(graph: PairwiseGraph, noisy: np.ndarray, flip_prob: float, *, sweeps: int = 50,
            chains: int = 16, rng: np.random.Generator | None = None, method: str = "gibbs") -> np.ndarray:
    """Denoise level images ``(N, H, W)`` under the prior ``graph`` (see ``GridMRF.denoise``)."""
    if not 0 < flip_prob < 1:
        raise ValueError(f"flip_prob must be in (0, 1), got {flip_prob}")
    rng = rng or np.random.default_rng(0)
    k = graph.k
    out = []
    for y in noisy.reshape(len(noisy), -1):
        extra = np.full((graph.n, k), np.log(flip_prob / (k - 1)))
        extra[np.arange(graph.n), y] = np.log(1 - flip_prob)
        if method == "lbp":
            bel, _ = graph.loopy_bp(extra=extra)
        elif method == "gibbs":
            x = graph.gibbs(chains, sweeps // 2, rng, init=np.tile(y, (chains, 1)), extra=extra[None])
            counts = np.zeros((graph.n, k))
            for _ in range(sweeps - sweeps // 2):
                x = graph.gibbs(chains, 1, rng, init=x, extra=extra[None])
                for c in range(k):
                    counts[:, c] += (x == c).sum(0)
            bel = counts
        else:
            raise ValueError(f"method must be 'gibbs' or 'lbp', got {method!r}")
        out.append(bel.argmax(1))
    return np.stack(out).reshape(noisy.shape)


def psnr(clean: np.ndarray, est: np.ndarray, data_range: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(clean, float) - np.asarray(est, float)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range ** 2 / mse)


def sample_texture(model: GridMRF, h: int, w: int, *, sweeps: int = 300, generator: Any = None) -> np.ndarray:
    """A texture of any size from a fitted grid MRF (tied parameters tile the plane)."""
    g = model.graph(h, w)
    return g.gibbs(1, sweeps, make_rng(generator)).reshape(h, w)

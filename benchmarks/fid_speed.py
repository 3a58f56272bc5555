"""FID speed and agreement: genlab against torchmetrics on the same features.

Features: ``--n`` x ``--dim`` (10,000 x 512) float32 rows of two correlated Gaussians
(seeded): real = z A, fake = (0.9 z + 0.44 e) A + 0.1 with a random mixing matrix A, so
both covariances are full and different. Each implementation gets the whole real and fake
sets and returns FID; torchmetrics sees them through an identity ``feature=`` module. The
three contenders run alternately, ``--reps`` times each, in one process; times are medians.

* genlab ``fid(real, fake)`` — float64, centred covariances (the symmetric Gram summed over
  its upper column panels only), a Cholesky factor and one symmetric eigen-solve;
* genlab ``FID`` class — streaming float64 sums (fixed 1024-row blocks), the same route;
* torchmetrics ``FrechetInceptionDistance`` — float64 sums, general ``eigvals(S1 S2)``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/fid_speed.py
    python benchmarks/fid_speed.py --smoke     # 600 x 256, one repetition (test suite)

torchmetrics is optional (the test extra installs it): without it only genlab runs.
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import genlab.metrics as gm  # noqa: E402


class Identity(torch.nn.Module):
    """The 'judge' for torchmetrics: returns the features as they are."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def features(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, dim, generator=g)
    mix = torch.randn(dim, dim, generator=g) / dim ** 0.5
    real = z @ mix
    fake = (0.9 * z + 0.44 * torch.randn(n, dim, generator=g)) @ mix + 0.1
    return real, fake


def run_genlab_fn(real, fake) -> float:
    return gm.fid(real, fake)


def run_genlab_class(real, fake) -> float:
    m = gm.FID(feature_space="synthetic")
    m.update(real, real=True)
    m.update(fake, real=False)
    return m.compute()["fid"]


def run_torchmetrics(real, fake) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    m = FrechetInceptionDistance(feature=Identity(real.shape[1]))
    m.update(real, real=True)
    m.update(fake, real=False)
    return float(m.compute())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="rows per set")
    ap.add_argument("--dim", type=int, default=512, help="feature width")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out/fid_speed.json")
    _common.add_smoke(ap)
    args = ap.parse_args()
    if _common.start_smoke(args):  # 256 wide: the Gram's 4-panel path
        args.n, args.dim, args.reps = 600, 256, 1
    warnings.filterwarnings("ignore", module="torchmetrics")

    real, fake = features(args.n, args.dim, args.seed)
    runs = {"genlab fid()": run_genlab_fn, "genlab FID class": run_genlab_class}
    tm = _common.optional("torchmetrics.image.fid", "pip install torchmetrics")
    if tm is not None:
        runs["torchmetrics FID"] = run_torchmetrics
    times: dict[str, list[float]] = {k: [] for k in runs}
    values: dict[str, float] = {}
    for _ in range(args.reps):
        for name, fn in runs.items():  # alternate, so drift hits all three alike
            t = time.perf_counter()
            values[name] = fn(real, fake)
            times[name].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in times.items()}
    nan = float("nan")
    ref_t, ref_v = med.get("torchmetrics FID", nan), values.get("torchmetrics FID", nan)
    print(f"FID on {args.n} x {args.dim} float32 features, median of {args.reps}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"{'implementation':<18} {'FID':>20} {'seconds':>9} {'tm time / time':>15} "
          f"{'|diff| to tm':>13}")
    rows = []
    for name in runs:
        ratio = ref_t / med[name]
        diff = abs(values[name] - ref_v)
        print(f"{name:<18} {values[name]:>20.12f} {med[name]:>9.3f} {ratio:>15.2f} "
              f"{diff:>13.2e}")
        rows.append({"implementation": name, "fid": values[name], "median_s": med[name],
                     "times_s": times[name], "torchmetrics_time_over_this": ratio,
                     "abs_diff_to_torchmetrics": diff})
    for name in ("genlab fid()", "genlab FID class"):  # speed: torchmetrics time / genlab time
        _common.ratio(f"{name} runs per second", 1 / med[name], None if tm is None else 1 / ref_t,
                      "torchmetrics", "" if tm is not None else "torchmetrics not installed")
    _common.save({"benchmark": "fid_speed", "n": args.n, "dim": args.dim, "reps": args.reps,
                  "seed": args.seed, "load_average_1min": os.getloadavg()[0],
                  "torchmetrics": getattr(sys.modules.get("torchmetrics"), "__version__", None),
                  "results": rows}, args.out)


if __name__ == "__main__":
    main()

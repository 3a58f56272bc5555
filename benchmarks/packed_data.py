"""Training from a pack (memory-mapped, uint8 on disk) against training in memory (issue 16).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/packed_data.py --gb 20 --fit-gb 1
    python benchmarks/packed_data.py --smoke

Two parts, one run:

1. **Throughput on data that fits.** A generated image set of ``--fit-gb`` GB (uint8) is
   packed once; the same VAE trains ``--steps`` steps reading it from the pack
   (``PackedArray``: rows read per batch) and from memory (the same splits decoded to
   float32 tensors), alternating ``--reps`` times; prints examples/s and the ratio.
2. **Scale.** A generated image set of ``--gb`` GB is written straight into a pack (no
   float32 copy ever exists), then a separate process trains on it for ``--steps`` steps
   while a thread samples ``/proc/self/status`` every 0.2 s: peak ``VmRSS`` (everything
   resident) and ``RssAnon`` (memory the process owns, without file pages) are reported.

The images are 3 x 64 x 64 (12 KiB each as uint8): smooth random blobs (8 x 8 noise
upsampled), ten random labels. The model: a VAE with an MLP of 512 hidden units, batch 128, Adam,
one thread. The pack files go under ``--dir`` (default a temporary folder) and are deleted
at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import _common  # noqa: E402

SHAPE = (3, 64, 64)
FRACTIONS = (0.98, 0.01, 0.01)


def write_pack(out: Path, n: int, *, seed: int = 0, chunk: int = 8192) -> Path:
    """A pack of ``n`` generated images, written chunk by chunk (bounded memory)."""
    import numpy as np

    from genlab.data import packed

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [int(n * FRACTIONS[0]), int(n * FRACTIONS[1])]
    sizes.append(n - sum(sizes))
    info = {"format": packed.FORMAT, "version": packed.VERSION, "kind": "image", "name": "generated",
            "source": "generated", "shape": list(SHAPE), "storage": "uint8", "classes": None, "columns": None,
            "meta": {}, "splits": {}}
    for split, m in zip(packed.SPLITS, sizes):
        mm = np.lib.format.open_memmap(out / f"{split}.x.npy", mode="w+", dtype=np.uint8, shape=(m, *SHAPE))
        for a in range(0, m, chunk):
            b = min(a + chunk, m)
            low = rng.integers(0, 256, (b - a, SHAPE[0], 8, 8), dtype=np.uint8)
            mm[a:b] = low.repeat(8, axis=2).repeat(8, axis=3)
        mm.flush()
        del mm
        np.save(out / f"{split}.y.npy", rng.integers(0, 10, m).astype(np.int64))
        info["splits"][split] = {"n": m, "x": f"{split}.x.npy", "y": f"{split}.y.npy",
                                 "stats": {"min": 0.0, "max": 1.0}}
    (out / packed.META_FILE).write_text(json.dumps(info))
    return out


def train(ds, steps: int, seed: int = 0) -> float:
    """Examples/s of ``steps`` VAE steps on ``ds``."""
    import genlab

    vae = genlab.models.VAE(hidden=(512,), latent_dim=16, likelihood="gaussian")
    t = time.perf_counter()
    vae.fit(ds, {"max_steps": steps, "epochs": 10**6, "batch_size": 128, "seed": seed, "progress": False,
                 "threads": 1, "val_fraction": 0, "checkpoint_every": 10**9})
    return steps * 128 / (time.perf_counter() - t)


def scale_child(path: str, steps: int) -> None:
    """Train on the pack at ``path`` and print peak memory (runs in its own process)."""
    peaks = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with open("/proc/self/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in peaks:
                        peaks[k] = max(peaks[k], int(v.split()[0]))
            stop.wait(0.2)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    from genlab.data.datasets import load_splits

    splits = load_splits(path)
    t = time.perf_counter()
    rate = train(splits["train"], steps)
    stop.set()
    th.join()
    print(json.dumps({"examples_per_s": rate, "wall_s": time.perf_counter() - t, "n_train": len(splits["train"]),
                      "lazy": type(splits["train"]).__name__, **{f"peak_{k}_mb": v / 1024 for k, v in peaks.items()}}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=20.0, help="size of the generated pack for the scale part")
    ap.add_argument("--fit-gb", type=float, default=1.0, help="size of the pack for the throughput part")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    _common.add_smoke(ap)
    a = ap.parse_args()
    if a.child:
        scale_child(a.child, a.steps)
        return
    if _common.start_smoke(a):
        a.gb, a.fit_gb, a.steps, a.reps = 0.02, 0.01, 10, 1
    import genlab  # noqa: F401
    from genlab.data.packed import load_packed

    root = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="genlab-packbench-"))
    per = int(__import__("numpy").prod(SHAPE))
    try:
        # 1. throughput on data that fits
        fit = write_pack(root / "fit.gldata", max(1000, int(a.fit_gb * 2**30 / per)))
        lazy = load_packed(fit, in_memory_bytes=0)["train"]
        mem = load_packed(fit, in_memory_bytes=2**62)["train"]
        print(f"throughput: {len(mem):,} images of {SHAPE}, {len(mem) * per / 2**30:.2f} GiB uint8 "
              f"({len(mem) * per * 4 / 2**30:.2f} GiB in memory as float32)", flush=True)
        rates = {"pack": [], "memory": []}
        for r in range(a.reps):
            for name, ds in (("memory", mem), ("pack", lazy)) if r % 2 == 0 else (("pack", lazy), ("memory", mem)):
                rates[name].append(train(ds, a.steps, seed=r))
            print(f"rep {r}: memory {rates['memory'][-1]:,.0f} /s, pack {rates['pack'][-1]:,.0f} /s", flush=True)
        med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
        _common.ratio("training examples/s from a pack", med["pack"], med["memory"], "in memory")
        del mem
        # 2. scale: a pack larger than memory
        n = int(a.gb * 2**30 / per)
        t = time.perf_counter()
        big = write_pack(root / "big.gldata", n, seed=1)
        size = sum(f.stat().st_size for f in big.iterdir())
        print(f"scale: wrote {n:,} images, {size / 2**30:.2f} GiB, in {time.perf_counter() - t:.0f} s", flush=True)
        p = subprocess.run([sys.executable, __file__, "--child", str(big), "--steps", str(a.steps)],
                           capture_output=True, text=True)
        if p.returncode:
            print(p.stderr[-3000:], file=sys.stderr)
            raise SystemExit(p.returncode)
        res = json.loads(p.stdout.strip().splitlines()[-1])
        print(json.dumps(res))
        print(f"scale: trained {a.steps} steps on {res['n_train']:,} images ({res['lazy']}), "
              f"{res['examples_per_s']:,.0f} examples/s; peak resident {res['peak_VmRSS_mb']:,.0f} MB "
              f"(owned {res['peak_RssAnon_mb']:,.0f} MB, file pages {res['peak_RssFile_mb']:,.0f} MB)")
        _common.ratio("peak resident MB under 2,048", 2048, res["peak_VmRSS_mb"], "measured")
    finally:
        if not a.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

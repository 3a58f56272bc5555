"""Training tokens/s of genlab's LSTM against a bare PyTorch loop of the same model, and
sampling tokens/s with and without carried state / the key-value cache.

Training: the same module (genlab's 2x256 LSTM, tied embeddings) on the same Shakespeare
windows (128 + 1 characters, batch 32, Adam 2e-3, gradient clipping 1.0), ``--steps``
steps per repetition; the two loops alternate ``--reps`` times in one process and the
median is reported. genlab runs through ``model.fit`` (trainer: NaN guard, progress
bookkeeping, logging; no run folder). Sampling: 32 sequences of 128 tokens at
temperature 1, LSTM with carried hidden state vs recomputing from the start each step,
Transformer (4x128) with vs without the key/value cache.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/lstm_throughput.py --steps 150 --reps 3
    python benchmarks/lstm_throughput.py --smoke     # 3 steps of batch 8, 4 x 16-token samples
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import statistics
import time

import torch

import genlab.models.sequence as S
from genlab.data import text
from genlab.errors import DataError

CFG = {"hidden": 256, "layers": 2}


def bare_loop(ds, steps: int, bs: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = S.LSTM(data_shape=ds.shape, vocab=tuple(ds.meta["tokenizer"]["vocab"]), tokenizer="char",
                   start="\n", **CFG)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    x = ds.x
    t = time.perf_counter()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for i in range(steps):
        batch = x[perm[i * bs:(i + 1) * bs]]
        logits = model.head(model.drop(model.rnn(model.drop(model.embed(batch[:, :-1])))[0]))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return time.perf_counter() - t


def genlab_loop(ds, steps: int, bs: int, seed: int) -> float:
    model = S.LSTM(**CFG)
    t = time.perf_counter()
    model.fit(ds, {"epochs": 1, "max_steps": steps, "batch_size": bs, "lr": 2e-3, "grad_clip": 1.0,
                   "seed": seed, "val_fraction": 0, "progress": False, "threads": 1})
    return time.perf_counter() - t


def sampling_speed(model, n: int, length: int, use_cache: bool) -> float:
    t = time.perf_counter()
    model.sample(n, generator=torch.Generator().manual_seed(0), max_len=length, use_cache=use_cache)
    return n * (length - 1) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/out/lstm_throughput.json")
    _common.add_smoke(ap)
    args = ap.parse_args()
    smoke = _common.start_smoke(args)
    if smoke:
        args.steps, args.batch_size, args.reps = 3, 8, 1
    n_samples, length = (4, 16) if smoke else (32, 128)
    torch.set_num_threads(1)
    try:
        sp = text.shakespeare(block_size=128, limit=64 if smoke else None)
    except DataError as e:
        _common.smoke_skip(str(e))
    ds = sp["train"].subset(slice(0, args.steps * args.batch_size))
    tokens = args.steps * args.batch_size * (ds.shape[0] - 1)
    bare, gl = [], []
    for r in range(args.reps):
        bare.append(tokens / bare_loop(ds, args.steps, args.batch_size, r))
        gl.append(tokens / genlab_loop(ds, args.steps, args.batch_size, r))
        print(f"rep {r}: bare {bare[-1]:.0f} tok/s, genlab {gl[-1]:.0f} tok/s", flush=True)
    train = {"bare_tokens_per_s": round(statistics.median(bare)), "genlab_tokens_per_s": round(statistics.median(gl)),
             "ratio": round(statistics.median(gl) / statistics.median(bare), 3)}
    print(train, flush=True)
    _common.ratio("training tokens/s", statistics.median(gl), statistics.median(bare), "bare loop")
    small = sp["train"].subset(slice(0, 16 if smoke else 64))
    lstm = S.LSTM(**CFG).fit(small, {"epochs": 1, "progress": False, "val_fraction": 0})
    tfm = S.Transformer(d_model=128, layers=4, heads=4).fit(small, {"epochs": 1, "progress": False, "val_fraction": 0})
    samp = []
    for name, m in (("lstm", lstm), ("transformer", tfm)):
        with_c = statistics.median(sampling_speed(m, n_samples, length, True) for _ in range(args.reps))
        without = statistics.median(sampling_speed(m, n_samples, length, False) for _ in range(args.reps))
        samp.append({"model": name, "cached_tokens_per_s": round(with_c), "uncached_tokens_per_s": round(without),
                     "speedup": round(with_c / without, 2)})
        print(samp[-1], flush=True)
    _common.save({"train": train, "train_runs": {"bare": bare, "genlab": gl}, "steps": args.steps,
                  "batch_size": args.batch_size, "block_size": 128, "threads": 1, "sampling": samp,
                  "sampling_setup": f"{n_samples} sequences x {length} tokens, temperature 1"}, args.out)


if __name__ == "__main__":
    main()

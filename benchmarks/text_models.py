"""Held-out nats per character on Shakespeare for RNN, GRU, LSTM and a Transformer under
one CPU budget, with samples; and names: each model against genlab's bigram baseline.

Each model trains with genlab's trainer for ``--budget`` seconds of CPU time (1 thread;
a callback stops the run), then is scored on the whole held-out test block (the last
5% of the corpus in reading order) with exact ``log_prob``. Anchors (different text /
budgets, so shape only): char-rnn's LSTM 1.40-1.42 nats/char on tiny-shakespeare,
nanoGPT's small CPU configuration 1.88 after 2000 iterations.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/text_models.py shakespeare --budget 180
    OMP_WAIT_POLICY=PASSIVE python benchmarks/text_models.py names --budget 60
    python benchmarks/text_models.py --smoke     # both tasks, one step per model, tiny scoring

Names: held-out NLL per character (``<eos>`` counted, as makemore does) of each model and
of an add-one-smoothed bigram count model fitted on the training names; samples; and the
share of generated names that copy a training name. Shakespeare gets the same bigram
baseline, fitted on the training windows.
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import math
import sys
import time

import torch

import genlab
from genlab.data import text
from genlab.errors import DataError

SHAKESPEARE = {
    "rnn": ("rnn", {"hidden": 256, "layers": 2, "dropout": 0.0}, 2e-3),
    "gru": ("gru", {"hidden": 256, "layers": 2, "dropout": 0.0}, 2e-3),
    "lstm": ("lstm", {"hidden": 256, "layers": 2, "dropout": 0.0}, 2e-3),
    "transformer": ("transformer", {"d_model": 128, "layers": 4, "heads": 4, "dropout": 0.0}, 1e-3),
}
NAMES = {
    "rnn": ("rnn", {"hidden": 128, "layers": 1, "dropout": 0.1}, 3e-3),
    "gru": ("gru", {"hidden": 128, "layers": 2, "dropout": 0.1}, 3e-3),
    "lstm": ("lstm", {"hidden": 128, "layers": 2, "dropout": 0.1}, 3e-3),
    "transformer": ("transformer", {"d_model": 64, "layers": 4, "heads": 4, "dropout": 0.1}, 1e-3),
}


# sample sizes: Shakespeare sample length, generated names (--smoke: tiny)
SIZES = {"sample_len": 300, "names": 1000}


class Budget:
    """Trainer callback: stop after ``seconds`` of this process's CPU time (1 thread), so
    models get the same compute however busy the shared machine is."""

    def __init__(self, seconds: float):
        self.seconds, self.t0, self.c0 = seconds, time.perf_counter(), time.process_time()

    def on_step_end(self, trainer, logs) -> None:
        self.steps = trainer.step
        if time.process_time() - self.c0 > self.seconds:
            trainer.should_stop = True


def n_params(m) -> int:
    return sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())


def train(name, cfg, lr, ds, budget, batch_size, seed=0, val=None, patience=None):
    model = genlab.MODELS.get(name)(**cfg)
    cb = Budget(budget)
    model.fit(ds, {"epochs": 1000, "batch_size": batch_size, "lr": lr, "grad_clip": 1.0, "seed": seed,
                   "threads": 1, "progress": False, "val_fraction": 0, "patience": patience},
              val=val, callbacks=[cb])
    return model, (round(time.process_time() - cb.c0, 1), cb.steps)


def bigram_nll(train_items: list[str], test_items: list[str]) -> float:
    """Add-one-smoothed character bigram model (the makemore baseline): nats per char."""
    chars = sorted(set("".join(train_items + test_items)))
    idx = {c: i + 1 for i, c in enumerate(chars)}  # 0 = start/end '.'
    counts = torch.ones(len(idx) + 1, len(idx) + 1, dtype=torch.float64)
    for w in train_items:
        seq = [0, *(idx[c] for c in w), 0]
        for a, b in zip(seq, seq[1:]):
            counts[a, b] += 1
    logp = (counts / counts.sum(1, keepdim=True)).log()
    tot, n = 0.0, 0
    for w in test_items:
        seq = [0, *(idx[c] for c in w), 0]
        for a, b in zip(seq, seq[1:]):
            tot -= float(logp[a, b])
            n += 1
    return tot / n


def bigram_nll_windows(train_x: torch.Tensor, test_x: torch.Tensor, vocab: int) -> float:
    """Add-one-smoothed bigram of token windows ``(N, T)``: nats per predicted token of the
    test windows (tokens 1..T-1 given the one before, as the models are scored)."""
    counts = torch.ones(vocab, vocab, dtype=torch.float64)
    counts.index_put_((train_x[:, :-1].reshape(-1), train_x[:, 1:].reshape(-1)),
                      torch.ones(train_x[:, 1:].numel(), dtype=torch.float64), accumulate=True)
    logp = (counts / counts.sum(1, keepdim=True)).log()
    return float(-logp[test_x[:, :-1], test_x[:, 1:]].mean())


def shakespeare(args) -> dict:
    sp = text.shakespeare(block_size=128)
    test = sp["test"].subset(slice(0, args.eval_windows)) if args.eval_windows else sp["test"]
    vocab = len(sp["train"].meta["tokenizer"]["vocab"])
    rows = [{"model": "bigram (counts, add-one)",
             "test_nats_per_char": round(bigram_nll_windows(sp["train"].x, test.x, vocab), 4)}]
    print(rows[0], flush=True)
    for key in args.models:
        name, cfg, lr = SHAKESPEARE[key]
        torch.manual_seed(0)
        m, wall = train(name, cfg, lr, sp["train"], args.budget, 32)
        t = time.perf_counter()
        nats = m.nll_per_char(test.x)
        sample = m.samples_to_text(m.sample(1, generator=torch.Generator().manual_seed(0), prompt="ROMEO:",
                                            max_len=SIZES["sample_len"], temperature=0.8))[0]
        rows.append({"model": key, "params": n_params(m), "train_cpu_s": wall[0], "steps": wall[1], "test_nats_per_char": round(nats, 4),
                     "test_bits_per_char": round(nats / math.log(2), 4),
                     "eval_s": round(time.perf_counter() - t, 1), "sample": sample})
        print(f"{key:12s} params {rows[-1]['params']:>8d}  nats/char {nats:.4f}", flush=True)
        print(sample, flush=True)
    return {"task": "shakespeare", "budget_s": args.budget, "threads": 1, "batch_size": 32,
            "block_size": 128, "test_chars": int(sp["test"].meta["chars"]), "rows": rows}


def names(args) -> dict:
    sp = text.names()
    tr_items, te_items = sp["train"].meta["items"], sp["test"].meta["items"]
    train_set = set(tr_items)
    # early stopping on the validation names (patience 5 epochs, best weights restored)
    rows = [{"model": "bigram (counts, add-one)", "test_nats_per_char": round(bigram_nll(tr_items, te_items), 4)}]
    print(rows[0], flush=True)
    for key in args.models:
        name, cfg, lr = NAMES[key]
        m, wall = train(name, cfg, lr, sp["train"], args.budget, 64, val=sp["val"], patience=5)
        nats = m.nll_per_char(sp["test"].x)
        gen = m.samples_to_text(m.sample(SIZES["names"], generator=torch.Generator().manual_seed(0)))
        copies = sum(g in train_set for g in gen) / len(gen)
        rows.append({"model": key, "params": n_params(m), "train_cpu_s": wall[0], "steps": wall[1],
                     "test_nats_per_char": round(nats, 4), "copy_share": round(copies, 3),
                     "samples": gen[:12]})
        print(rows[-1], flush=True)
    return {"task": "names", "budget_s": args.budget, "threads": 1, "n_train": len(tr_items),
            "n_test": len(te_items), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["shakespeare", "names"], nargs="?" if "--smoke" in sys.argv[1:] else None)
    ap.add_argument("--budget", type=float, default=180, help="training seconds per model")
    ap.add_argument("--models", nargs="+", default=["rnn", "gru", "lstm", "transformer"])
    ap.add_argument("--eval-windows", type=int, default=None, help="score only the first N test windows")
    ap.add_argument("--out", default=None)
    _common.add_smoke(ap)
    args = ap.parse_args()
    tasks = [args.task]
    if _common.start_smoke(args):  # both tasks; the CPU budget stops each model after one step
        tasks = [args.task] if args.task else ["shakespeare", "names"]
        args.budget, args.eval_windows = 0, 4
        SIZES.update(sample_len=40, names=20)
    torch.set_num_threads(1)
    for task in tasks:
        try:
            res = shakespeare(args) if task == "shakespeare" else names(args)
        except DataError as e:
            _common.smoke_skip(str(e).splitlines()[0])
        rows = {r["model"]: r["test_nats_per_char"] for r in res["rows"]}
        for key in args.models:
            _common.ratio(f"{task} {key} test nats/char (lower is better)", rows[key],
                          rows["bigram (counts, add-one)"], "the bigram model")
        _common.save(res, args.out or f"benchmarks/out/text_{task}.json")


if __name__ == "__main__":
    main()

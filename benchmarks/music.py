"""Music: LSTM and Transformer on folk melodies (music21's Ryan's Mammoth Collection).

Each model trains for ``--budget`` seconds (1 thread, genlab trainer, early stopping on
the validation tunes) on the ``folk`` dataset (400 tunes, first 64 notes, training tunes
transposed by -2..+2 semitones), then is scored on the held-out tunes: nats per note
(exact log_prob), and for 100 generated melodies against the training melodies the
pitch-class and duration distances (total variation), the share of in-key notes and the
repetition share; the held-out real tunes against the training tunes give each number its
real-vs-real floor. Three samples of the best model go to docs/music/ (MIDI, WAV, PNG).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/music.py --budget 120
    python benchmarks/music.py --smoke     # 12 tunes, one step per model, 4 melodies
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY before torch

import argparse
import time

import torch

import genlab
import genlab.models.sequence  # noqa: F401
from genlab.data import text
from genlab.errors import DataError
from genlab.pipelines import music

MODELS = {
    "lstm": ("lstm", {"hidden": 256, "layers": 2, "dropout": 0.2}, 2e-3),
    "transformer": ("transformer", {"d_model": 128, "layers": 4, "heads": 4, "dropout": 0.1}, 1e-3),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=120)
    ap.add_argument("--tunes", type=int, default=400)
    ap.add_argument("--out", default="benchmarks/out/music.json")
    ap.add_argument("--docs", default="docs/music")
    _common.add_smoke(ap)
    args = ap.parse_args()
    n_gen = 100
    if _common.start_smoke(args):  # the CPU budget stops each model after its first step
        args.budget, args.tunes, n_gen = 0, 12, 4
        args.docs = str(_common.out_path(args.docs))
    torch.set_num_threads(1)
    from text_models import Budget

    t = time.perf_counter()
    try:
        sp = text.folk(tunes=args.tunes)
    except (DataError, ImportError) as e:
        _common.smoke_skip(str(e).splitlines()[0])
    print(f"data {({k: tuple(v.x.shape) for k, v in sp.items()})} in {time.perf_counter() - t:.0f} s", flush=True)
    train_notes = [music.ids_to_notes(r) for r in sp["train"].x.tolist()]
    test_notes = [music.ids_to_notes(r) for r in sp["test"].x.tolist()]
    rows = [{"model": "real held-out tunes (floor)", **music.music_metrics(test_notes, train_notes)}]
    best = None
    for key, (name, cfg, lr) in MODELS.items():
        m = genlab.MODELS.get(name)(**cfg)
        cb = Budget(args.budget)
        m.fit(sp["train"], {"epochs": 1000, "batch_size": 32, "lr": lr, "grad_clip": 1.0, "threads": 1,
                            "progress": False, "patience": 3}, val=sp["val"], callbacks=[cb])
        nll = music.nll_per_note(m, sp["test"])
        gen = music.Composer(m).compose(n_gen, generator=torch.Generator().manual_seed(0))
        rows.append({"model": key, "train_cpu_s": round(time.process_time() - cb.c0, 1), "steps": cb.steps,
                     "test_nats_per_note": round(nll, 4), **music.music_metrics(gen, train_notes)})
        print(rows[-1], flush=True)
        if best is None or nll < best[0]:
            best = (nll, key, m)
    _, key, m = best
    comp = music.Composer(m)
    paths = []
    for i, notes in enumerate(comp.compose(3, generator=torch.Generator().manual_seed(1), max_len=82,
                                           temperature=0.9)):
        base = f"{args.docs}/{key}_folk_{i}"
        paths += [str(music.write_midi(notes, base + ".mid")), str(music.render_wav(notes, base + ".wav", sr=11025)),
                  str(music.piano_roll_png(notes, base + ".png", title=f"{key} folk sample {i}"))]
    print("\n".join(paths))
    floor = rows[0]
    for r in rows[1:]:  # distances to the training tunes, against the held-out tunes' own
        _common.ratio(f"{r['model']} pitch-class distance (lower is better)", r["pitch_class_tv"],
                      floor["pitch_class_tv"], "held-out real tunes")
    _common.save({"task": "folk melodies", "budget_s": args.budget, "tunes": args.tunes, "threads": 1,
                  "n_train_rows": len(sp["train"]), "n_test_tunes": len(sp["test"]), "rows": rows,
                  "samples": paths}, args.out)


if __name__ == "__main__":
    main()

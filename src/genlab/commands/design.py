"""``genlab design RUN --objective qed``: goal-directed molecule design with a molecule run
(``genlab.pipelines.HillClimb``): sample, score, fine-tune on the best, repeat; the best
molecules go to a ``.smi`` file (SMILES and score per line) and the fine-tuned model to
``--out``. ``--method latent`` (the default for a SMILES VAE) searches the VAE's latent
space instead (``genlab.pipelines.LatentSearch``) and leaves the model unchanged."""
from __future__ import annotations

from ..errors import UsageError
from . import COMMANDS, Command

import argparse
from pathlib import Path
from typing import Any


def cmd_design(args: argparse.Namespace) -> int:
    from ..base import load
    from ..pipelines.molecule_design import HillClimb, LatentSearch

    from ..outputs import check_new_files, check_writable

    check_new_files([args.output], overwrite=args.overwrite)
    check_writable(Path(args.output).parent)
    if args.out:
        out_dir = Path(args.out)
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"--out {out_dir} is a file; give a folder for the fine-tuned model")
        if out_dir.is_dir() and any(out_dir.iterdir()):
            if not (out_dir / "config.json").is_file():
                raise UsageError(f"--out {out_dir} is not empty and holds no genlab model: choose a new or "
                                 "empty folder")
            check_new_files([out_dir / "config.json"], overwrite=args.overwrite)
    model = load(args.run)
    method = args.method
    if method == "auto":
        method = "latent" if model.tags.latent else "finetune"
    try:
        if method == "latent":
            ls = LatentSearch(model, args.objective, similar_to=args.similar_to,
                              min_similarity=args.min_similarity, n_jobs=args.n_jobs)
            res = ls(rounds=args.rounds, n_samples=args.n_samples, start=args.similar_to,
                     std=0.5 if args.similar_to else 1.0, seed=args.seed)
        else:
            hc = HillClimb(model, args.objective, similar_to=args.similar_to,
                           min_similarity=args.min_similarity, n_jobs=args.n_jobs)
            res = hc(rounds=args.rounds, n_samples=args.n_samples, keep=args.keep, epochs=args.epochs,
                     lr=args.lr, seed=args.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"{'round':>5} {'valid':>6} {'mean':>8} {'max':>8} {'top-100 mean':>13}")
    for h in res["history"]:
        print(f"{h['round']:>5} {h['valid']:>6.3f} {h['mean']:>8.4f} {h['max']:>8.4f} {h['top100_mean']:>13.4f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{s}\t{v:.6g}\n" for s, v in res["top"][:args.top]))
    print(f"best {min(args.top, len(res['top']))} molecules: {out}")
    if args.out and method == "finetune":
        model.save(args.out)
        print(f"fine-tuned model: {args.out}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    s = subparsers.add_parser("design", help="goal-directed molecule design (hill climbing) with a molecule run",
                              description="Sample molecules from RUN's model, score them, fine-tune the model on "
                              "the best found so far and repeat (GuacaMol's SMILES-LSTM hill climb). Writes the "
                              "best molecules with their scores.")
    s.add_argument("run", help="run folder or model folder of a model trained on molecules")
    s.add_argument("--objective", default="qed", help="qed, logp, sa or weight; a leading - minimises (default qed)")
    s.add_argument("--similar-to", default=None, help="a SMILES the molecules must stay similar to")
    s.add_argument("--min-similarity", type=float, default=0.0, help="Tanimoto threshold for --similar-to")
    s.add_argument("--method", choices=("auto", "finetune", "latent"), default="auto",
                   help="finetune: hill climb by fine-tuning; latent: cross-entropy search in a SMILES "
                        "VAE's latent space (from --similar-to's code if given); auto: latent for a VAE")
    s.add_argument("--rounds", type=int, default=5)
    s.add_argument("--n-samples", type=int, default=1024, help="molecules sampled per round")
    s.add_argument("--keep", type=int, default=256, help="best molecules fine-tuned on")
    s.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs per round")
    s.add_argument("--lr", type=float, default=5e-4)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--n-jobs", type=int, default=1, help="processes for scoring")
    s.add_argument("--top", type=int, default=100, help="molecules written to the output")
    s.add_argument("-o", "--output", default="designed.smi", help="output .smi (SMILES<TAB>score)")
    s.add_argument("--out", default=None, help="also save the fine-tuned model here (finetune)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing -o file or --out model")
    return s


COMMANDS.register("design")(Command(add_parser, cmd_design, order=130))

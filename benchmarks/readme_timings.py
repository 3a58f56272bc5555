"""Wall time of every command the README shows, on this machine, so the README can state
what a newcomer will wait.

Each command runs as the README writes it, in a scratch folder. A training command whose
full run would take long runs ``--max-steps K`` instead: its data loading, test metrics
and report are timed as they are, and its training time is the measured time per step
times the full run's steps (said so in the table: "est.").

    OMP_WAIT_POLICY=PASSIVE python benchmarks/readme_timings.py [--only NAME ...]
    python benchmarks/readme_timings.py --smoke     # train-svae for 2 steps and its estimate
"""
from __future__ import annotations

import _common  # sets OMP_WAIT_POLICY

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENLAB = [sys.executable, "-m", "genlab"]
# name -> (command as in the README, steps to run instead of the whole training or None)
COMMANDS: list[tuple[str, str, int | None]] = [
    ("quickstart", "genlab quickstart", None),
    ("train-fm", "genlab train vae --data fashion-mnist --binarize --epochs 10 --latent_dim=32 --arch=conv "
                 "--out runs/fm", None),
    ("sample-fm", "genlab sample runs/fm -n 64 -o grid.png", None),
    ("report-fm", "genlab report runs/fm", None),
    ("evaluate-fm-2000", "genlab evaluate runs/fm -n 2000", None),
    ("evaluate-fm", "genlab evaluate runs/fm", None),
    ("train-gan", "genlab train gan --data fashion-mnist --arch=conv --loss=hinge --spectral_norm=true "
                  "--out runs/gan", 200),
    ("train-srgan", "genlab train srgan --data fashion-mnist --factor=4 --out runs/sr", 100),
    ("upscale", "genlab upscale runs/sr small.png -o up/", None),
    ("train-lstm", "genlab train lstm --data shakespeare --hidden=256 --layers=2 --out runs/lstm", 40),
    ("sample-lstm", "genlab sample runs/lstm -n 3 --prompt ROMEO: --temperature 0.8", None),
    ("train-folk", "genlab train transformer --data folk --out runs/folk", 60),
    ("compose", "genlab compose runs/folk -n 4 -o music/", None),
    ("train-svae", "genlab train seqvae --data names --latent_dim=16 --dec_hidden=256 --dec_layers=1 "
                   "--kl_max=0.1 --epochs 30 --out runs/svae", None),
    ("sample-svae", "genlab sample runs/svae -n 10", None),
    ("interpolate", "genlab interpolate runs/svae anna robert --steps 7", None),
    ("train-bn", "genlab train bayesnet --data table.csv --out runs/bn", None),
    ("sample-bn", "genlab sample runs/bn -n 10000 -o synth.csv", None),
    # molecules (the trainings run 20 steps: their evaluate/design rows time a barely trained model)
    ("train-smiles", "genlab train lstm --data moses --hidden=512 --layers=3 --dropout=0.2 --epochs 10 "
                     "--out runs/smiles-lstm", 20),
    ("sample-smiles", "genlab sample runs/smiles-lstm -n 10", None),
    ("train-selfies", "genlab train lstm --data moses-selfies --out runs/selfies-lstm", 20),
    ("train-big", "genlab train lstm --data moses --data-opt n_train=500000 --data-opt augment=2 --out runs/big", 20),
    ("evaluate-smiles", "genlab evaluate runs/smiles-lstm -n 30000", None),
    ("design-smiles", "genlab design runs/smiles-lstm --objective qed --rounds 8 -o best.smi", None),
    ("train-smiles-vae", "genlab train seqvae --data moses --out runs/smiles-vae", 20),
    ("interpolate-smiles", "genlab interpolate runs/smiles-vae CCO c1ccccc1O", None),
    ("design-vae", "genlab design runs/smiles-vae --objective qed --rounds 10", None),
]


def run(cmd: str, cwd: Path, steps: int | None) -> dict:
    args = shlex.split(cmd)[1:]
    if steps is not None:
        args += ["--max-steps", str(steps)]
    t = time.perf_counter()
    p = subprocess.run(GENLAB + args, cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, "GENLAB_CACHE": str(cwd / "cache")})
    wall = time.perf_counter() - t
    rec = {"command": cmd, "rc": p.returncode, "wall_s": round(wall, 1)}
    if p.returncode != 0:
        rec["error"] = (p.stderr or p.stdout)[-400:]
        return rec
    out = next((a for a in (args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out")), None)
    if out and (cwd / out / "run.json").is_file():
        info = json.loads((cwd / out / "run.json").read_text())
        rec["phases_s"] = info.get("phases_s")
        if steps is not None:  # the full run: measured time per step x its steps
            import genlab
            from genlab.train import TrainConfig

            cls = genlab.MODELS.get(info["model_type"])
            model = cls(cls.config_class.from_dict(info["model_config"]))
            cfg = TrainConfig.from_dict({**info["train_config"], "max_steps": None})
            full = model.planned_steps(int(info["n_train"]), cfg)
            per_step = info["phases_s"]["train"] / steps
            rec.update(steps_run=steps, full_steps=full, s_per_step=round(per_step, 3),
                       est_full_s=round(wall - info["phases_s"]["train"] + per_step * full, 0))
    return rec


def prepare(cwd: Path) -> None:
    """The inputs the README's commands assume: a small image, a table."""
    import numpy as np
    from PIL import Image

    from genlab.data.datasets import load_splits
    from genlab.models.pgm import read_bif

    img = (load_splits("fashion-mnist")["test"].x[0, 0].numpy() * 255).astype(np.uint8)
    Image.fromarray(img).save(cwd / "small.png")
    bn = read_bif("alarm")
    bn.decode(bn.sample(10_000, generator=0)).to_csv(cwd / "table.csv")


def human(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else (f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--keep", help="scratch folder to use and keep")
    _common.add_smoke(ap)
    a = ap.parse_args()
    commands = COMMANDS
    if _common.start_smoke(a):  # one small training command, 2 steps, and its full-run estimate
        commands = [(n, c, 2) for n, c, _ in COMMANDS if n == "train-svae"]
        a.keep = str(_common.smoke_dir() / "scratch")
    cwd = Path(a.keep or tempfile.mkdtemp(prefix="genlab-readme-"))
    cwd.mkdir(parents=True, exist_ok=True)
    if not _common.SMOKE:  # the smoke command needs none of these inputs
        prepare(cwd)
    rows = []
    for name, cmd, steps in commands:
        if a.only and name not in a.only:
            continue
        rec = {"name": name, **run(cmd, cwd, steps)}
        rows.append(rec)
        t = rec.get("est_full_s")
        shown = f"{human(rec['wall_s'])}" if t is None else \
            f"est. {human(t)} ({rec['full_steps']:,} steps at {rec['s_per_step']} s/step, measured over {steps})"
        print(f"| `{cmd}` | {shown if rec['rc'] == 0 else 'FAILED: ' + rec.get('error', '')} |", flush=True)
        if rec["rc"] != 0 and _common.SMOKE:
            sys.exit(f"{name} failed: {rec.get('error', '')}")
        if t is not None:
            _common.ratio(f"{name} measured wall s over the full-run estimate", rec["wall_s"], t,
                          "estimated full run", f"{steps} of {rec['full_steps']} steps run")
    out = _common.out_path(Path(__file__).parent / "out" / "readme_timings.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": _common.machine(), **({"smoke": True} if _common.SMOKE else {}),
                               "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

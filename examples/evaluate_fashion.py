"""Train a small conv VAE on Fashion-MNIST into a run folder and score it with every
evaluation metric beside its real-vs-real floor (about 2 minutes on 2 cores).

    python examples/evaluate_fashion.py
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from genlab.evaluation import evaluate_run, format_rows  # noqa: E402
from genlab.report import write_report  # noqa: E402
from genlab.workflow import train_run  # noqa: E402

run = train_run("vae", "fashion-mnist", out="runs/example-fashion-vae",
                train={"epochs": 3, "batch_size": 128},
                model_config={"arch": "conv", "latent_dim": 32, "hidden": (256,)})
record = evaluate_run(run, n=5000)
write_report(run)  # the report now shows the scores too
print(format_rows(record["rows"]))
print(f"report: {run.path / 'report.html'}")

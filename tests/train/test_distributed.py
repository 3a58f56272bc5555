"""torchrun data parallelism: two CPU processes (gloo) train the same model as one process."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import genlab

SCRIPT = textwrap.dedent("""
    import sys
    import torch, genlab
    from genlab.data.datasets import load_splits
    from genlab.train import distributed

    s = load_splits("digits")
    train, val = s["train"].subset(slice(0, 256)), s["val"]
    m = genlab.models.Autoencoder(hidden=(32, 16), latent_dim=4)  # no noise in forward: comparable
    m.fit(train, {"epochs": 2, "batch_size": 32, "progress": False, "threads": 1, "log_every": 4},
          val=val, run_dir=sys.argv[1] + "/run")
    if distributed.is_main():
        m.save(sys.argv[1] + "/model")
""")


def test_two_processes_match_one(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(tmp_path / "two")], env=env, capture_output=True, text=True,
                         timeout=300)
    if two.returncode != 0 and "gloo" in two.stderr.lower() and "not available" in two.stderr.lower():
        pytest.skip("this torch build has no gloo backend")
    assert two.returncode == 0, two.stderr[-3000:]
    a = genlab.load(tmp_path / "one" / "model").state_dict()
    b = genlab.load(tmp_path / "two" / "model").state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), k
    rows = (tmp_path / "two" / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == len((tmp_path / "one" / "run" / "metrics.jsonl").read_text().splitlines())

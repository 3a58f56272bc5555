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
    from genlab.train import distributed, trainer

    rows = [0]  # training rows this process reads (under torchrun: only its own share)
    _batch = trainer.Trainer._batch
    def counting(self, ds, idx):
        if ds is self.train_data:
            rows[0] += len(idx)
        return _batch(self, ds, idx)
    trainer.Trainer._batch = counting

    s = load_splits("digits")
    train, val = s["train"].subset(slice(0, 256)), s["val"]
    m = genlab.models.Autoencoder(hidden=(32, 16), latent_dim=4)  # no noise in forward: comparable
    m.fit(train, {"epochs": 2, "batch_size": 32, "progress": False, "threads": 1, "log_every": 4,
                  "augment": "flip,shift:1,noise:0.02"},
          val=val, run_dir=sys.argv[1] + "/run")
    open(sys.argv[1] + f"/rows_{distributed.rank_and_world()[0]}.txt", "w").write(str(rows[0]))
    if distributed.is_main():
        m.save(sys.argv[1] + "/model")
""")


def test_two_processes_match_one(tmp_path):
    """Two processes train one process's weights, and each reads only its half of every
    batch (DistributedSampler semantics: 256 rows x 2 epochs in all), also with seeded
    augmentation (each process applies its rows' draws of the whole batch)."""
    _one_and_two(tmp_path, SCRIPT)
    read = lambda f: int((tmp_path / f).read_text())  # noqa: E731
    assert read("one/rows_0.txt") == 512
    assert read("two/rows_0.txt") == read("two/rows_1.txt") == 256
    _same_as_one_process(tmp_path, "two")


GAN_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch, genlab
    from genlab.data.datasets import load_splits
    from genlab.models.gan import GAN
    from genlab.runs import train_run
    from genlab.train import distributed

    out = sys.argv[1]
    s = load_splits("digits")
    # no batch statistics (batch norm, minibatch std): those are taken per process
    g = GAN(arch="mlp", hidden=(32,), latent_dim=4, loss="wgan-gp", n_critic=2, pack=2, ema_decay=0.9)
    seen = [0]  # rows the discriminator judges in this process (each process: its share only)

    class Count(genlab.train.Callback):
        def on_fit_start(self, trainer):
            trainer.model.discriminator.register_forward_pre_hook(
                lambda mod, args: seen.__setitem__(0, seen[0] + len(args[0])))

    g.fit(s["train"].subset(slice(0, 256)), {"epochs": 2, "batch_size": 32, "progress": False, "threads": 1,
                                             "log_every": 2, "grad_clip": 5.0, "val_fraction": 0}, run_dir=out + "/run",
          callbacks=[Count()])
    rank, world = distributed.rank_and_world()
    with open(f"{out}/rows_{rank}.json", "w") as f:
        json.dump(seen[0], f)
    if distributed.is_main():
        g.save(out + "/wgan")
    # a conditional GAN through train_run, as `genlab train gan` runs it
    train_run("gan", "digits", out=out + "/cond", report=False, data_options={"limit": 256},
              model_config={"arch": "mlp", "hidden": [32], "latent_dim": 4, "loss": "hinge", "num_classes": -1},
              train={"epochs": 1, "batch_size": 32, "progress": False, "threads": 1})
""")


def _same_as_one_process(tmp_path, folder):
    """The model in ``tmp_path/folder`` equals one process's to float rounding, and its run
    logged as many rows."""
    a = genlab.load(tmp_path / "one" / "model").state_dict()
    b = genlab.load(tmp_path / folder / "model").state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), k
    rows = (tmp_path / folder / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == len((tmp_path / "one" / "run" / "metrics.jsonl").read_text().splitlines())


def _clean_env():
    """This environment without a torchrun of its own (a test may run under one)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _one_process(tmp_path, script_text, **env_extra):
    """Write the script and run it in one process into ``tmp_path/one``."""
    script = tmp_path / "train.py"
    script.write_text(script_text)
    env = {**_clean_env(), **env_extra}
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    return script, env


def _one_and_two(tmp_path, script_text, **env_extra):
    script, env = _one_process(tmp_path, script_text, **env_extra)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(tmp_path / "two")], env=env, capture_output=True, text=True,
                         timeout=300)
    if two.returncode != 0 and "gloo" in two.stderr.lower() and "not available" in two.stderr.lower():
        pytest.skip("this torch build has no gloo backend")
    assert two.returncode == 0, two.stderr[-3000:]


def test_two_processes_train_a_gan_like_one(tmp_path):
    """The adversarial step under torchrun: each process takes its rows of every global
    batch *and of its noise* (z, the gradient-penalty weights, the labels of the fakes), so
    two processes give one process's weights (EMA included) to float rounding."""
    _one_and_two(tmp_path, GAN_SCRIPT)
    for folder in ("wgan", "cond/model"):
        a = genlab.load(tmp_path / "one" / folder).state_dict()
        b = genlab.load(tmp_path / "two" / folder).state_dict()
        assert any(k.startswith("generator_ema.") for k in a) or folder != "wgan"
        for k in a:
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), (folder, k)
    one_rows = (tmp_path / "one" / "run" / "metrics.jsonl").read_text().splitlines()
    two_rows = (tmp_path / "two" / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(one_rows) == len(two_rows) == 4
    import json

    for r1, r2 in zip(map(json.loads, one_rows), map(json.loads, two_rows)):  # logs are averaged over processes
        assert r1["d_loss"] == pytest.approx(r2["d_loss"], rel=1e-4, abs=1e-5)
    rows = [json.loads((tmp_path / "two" / f"rows_{r}.json").read_text()) for r in (0, 1)]
    assert rows[0] == rows[1] == json.loads((tmp_path / "one" / "rows_0.json").read_text()) // 2 > 0
    assert json.loads((tmp_path / "one" / "cond" / "run.json").read_text())["world_size"] == 1
    assert json.loads((tmp_path / "two" / "cond" / "run.json").read_text())["world_size"] == 2


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # (default suite: ~10 s+ each; the one-node tests cover the mechanism)
def test_two_nodes_on_loopback_match_one_process(tmp_path):
    """Two torchrun "nodes" (one process each) meet at a rendezvous on 127.0.0.1 and train
    to one process's weights, writing one shared run folder (rank 0 of node 0 writes)."""
    script, env = _one_process(tmp_path, SCRIPT)
    port = _free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r),
                               "--nproc-per-node", "1", "--rdzv-backend", "static",
                               "--rdzv-endpoint", f"127.0.0.1:{port}", str(script), str(tmp_path / "nodes")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]
    outs = [p.communicate(timeout=300) for p in nodes]
    for p, (_, err) in zip(nodes, outs):
        assert p.returncode == 0, err[-3000:]
    _same_as_one_process(tmp_path, "nodes")


def test_genlab_sample_under_torchrun_equals_one_process(tmp_path):
    """`genlab sample` in two processes: each draws its share of the seeded chunks, rank 0
    writes them in order, so every format holds one process's samples byte for byte."""
    from genlab.workflow import train_run

    env = _clean_env()
    vae = train_run("vae", "digits", out=tmp_path / "vae", model_config={"hidden": (16,), "latent_dim": 2},
                    train={"epochs": 1, "progress": False}, report=False)
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog.\n" * 300)
    lm = train_run("lstm", str(corpus), out=tmp_path / "lm", model_config={"hidden": 16, "layers": 1},
                   train={"epochs": 1, "progress": False}, report=False)
    # (the chunks are gathered before any writer runs: one image and one text format suffice)
    for run, n, suffixes in ((vae, 2500, (".npy",)), (lm, 40, (".txt",))):
        for suffix in suffixes:
            outs = {}
            for how, cmd in (("one", [sys.executable, "-m", "genlab"]),
                             ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                      "--nproc_per_node", "2", "-m", "genlab"])):
                target = tmp_path / f"{how}{suffix}"
                p = subprocess.run([*cmd, "sample", str(run.path), "-n", str(n), "--seed", "3", "-o", str(target)],
                                   env=env, capture_output=True, text=True, timeout=300)
                assert p.returncode == 0, p.stderr[-3000:]
                outs[how] = target.read_bytes()
                if how == "two":
                    assert "(2 processes)" in p.stdout and p.stdout.count("wrote") == 1, p.stdout
            assert outs["one"] == outs["two"], suffix
    assert not list(tmp_path.glob(".*torchrun-chunks"))  # the shared chunks are removed


def test_genlab_evaluate_under_torchrun_equals_one_process(tmp_path):
    """`genlab evaluate` of an image run in two processes: each samples its seeded chunks
    and extracts their judge features, rank 0 gathers them in order and scores: the same
    scores as one process, to the last digit."""
    import json as _json

    from genlab.workflow import train_run

    # torchrun gives each process one OpenMP thread: so does the one-process run (the
    # covariances behind FID are summed in another order with more threads)
    env = {**_clean_env(), "OMP_NUM_THREADS": "1"}
    run = train_run("vae", "digits", out=tmp_path / "vae", model_config={"hidden": (16,), "latent_dim": 2},
                    train={"epochs": 1, "progress": False}, report=False)
    scores = {}
    for how, cmd in (("one", [sys.executable, "-m", "genlab"]),
                     ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                              "-m", "genlab"])):
        p = subprocess.run([*cmd, "evaluate", str(run.path), "-n", "1200", "--metrics", "fid,kid,prdc,modes",
                            "--seed", "2"], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        assert p.stdout.count("report:") == 1, p.stdout  # rank 0 alone reports
        rec = _json.loads((run.path / "eval.json").read_text())["evaluation"]
        scores[how] = {r["metric"]: r["value"] for r in rec["rows"]}
    assert scores["one"] == scores["two"] and "fid" in scores["one"]


METRIC_SYNC_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    import genlab.metrics as gm
    from genlab.train import distributed

    rank, world = distributed.rank_and_world()
    if world > 1:
        distributed.setup()
    g = torch.Generator().manual_seed(0)
    real = torch.randn(3000, 12, generator=g, dtype=torch.float64)
    fake = 1.1 * torch.randn(3000, 12, generator=g, dtype=torch.float64) + 0.3
    probs = torch.softmax(3 * torch.randn(3000, 10, generator=g, dtype=torch.float64), 1)
    labels = torch.randint(0, 10, (3000,), generator=g)
    part = slice(rank * 3000 // world, (rank + 1) * 3000 // world)  # this process's contiguous share
    metrics = {"fid": gm.FID(), "kid": gm.KID(subsets=20, subset_size=500), "prdc": gm.PrecisionRecall(),
               "is": gm.InceptionScore(), "modes": gm.ModeCoverage(), "memorization": gm.Memorization(),
               "diversity": gm.Diversity()}
    for name in ("fid", "kid", "prdc"):
        metrics[name].update(real[part], real=True)
        metrics[name].update(fake[part], real=False)
    metrics["is"].update(probs[part])
    metrics["modes"].update(probs[part])
    metrics["modes"].update(labels[part], real=True)
    for which, x in (("fake", fake), ("train", real), ("test", real + 0.01)):
        metrics["memorization"].update(x[part], which)
    metrics["diversity"].update(fake[part])
    out = {}
    for name, m in metrics.items():
        res = m.sync().compute()
        out[name] = {k: v for k, v in res.items() if isinstance(v, (int, float))}
    if rank == 0:
        open(sys.argv[1] + ".json", "w").write(json.dumps(out))
""")


def test_metric_states_sync_over_two_processes(tmp_path):
    """``Metric.sync`` (torchmetrics' ``dist_reduce_fx``): two processes, each fed its half
    of the data, give after ``sync()`` the scores of one process fed all of it."""
    import json

    _one_and_two(tmp_path, METRIC_SYNC_SCRIPT, OMP_NUM_THREADS="1")  # torchrun's one thread per process
    a = json.loads((tmp_path / "one.json").read_text())
    b = json.loads((tmp_path / "two.json").read_text())
    assert a.keys() == b.keys() == {"fid", "kid", "prdc", "is", "modes", "memorization", "diversity"}
    for name in a:
        for k, v in a[name].items():
            if name == "fid":  # sums of other blocks, rebased: equal to float rounding
                assert b[name][k] == pytest.approx(v, rel=1e-9), (name, k)
            else:  # rows concatenated in rank order, histograms summed: identical
                assert b[name][k] == v, (name, k)


@pytest.mark.slow  # (default suite: ~10 s+ each; the one-node tests cover the mechanism)
def test_molecule_evaluation_under_torchrun_equals_one_process(tmp_path):
    """MOSES scoring of a molecule run in two processes: each draws and featurises its
    block of seeded chunks and its block of the real floor molecules, runs ChemNet on its
    own rows, the featurised molecules are gathered in chunk order (``MoleculeMetrics.sync``)
    and rank 0 scores: the same scores and floors as one process."""
    import json as _json

    import numpy as np

    from genlab.workflow import train_run

    env = {**_clean_env(), "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(1)
    chains = list(dict.fromkeys("".join(rng.choice(list("CCCCCCNO"), int(rng.integers(3, 9)))) for _ in range(600)))
    smi = tmp_path / "mols.smi"
    smi.write_text("SMILES\n" + "\n".join(chains) + "\n")
    run = train_run("lstm", str(smi), out=tmp_path / "run", model_config={"hidden": 16, "layers": 1},
                    train={"epochs": 2, "progress": False}, report=False)
    scores = {}
    for how, cmd in (("one", [sys.executable, "-m", "genlab"]),
                     ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                              "-m", "genlab"])):
        p = subprocess.run([*cmd, "evaluate", str(run.path), "-n", "2500", "--seed", "1"], env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        assert p.stdout.count("report:") == 1, p.stdout
        rec = _json.loads((run.path / "eval.json").read_text())["evaluation"]
        scores[how] = {r["metric"]: (r["value"], r.get("floor")) for r in rec["rows"]}
    assert "FCD/Test" in scores["one"] and "unique@1000" in scores["one"]
    assert scores["one"]["FCD/Test"][1] is not None  # the floor (real validation molecules) is scored
    # ChemNet runs in each process on its own rows (other batch boundaries: FCD to rounding);
    # everything else is counted from the gathered molecules: identical
    for m, (v, fl) in scores["one"].items():
        v2, fl2 = scores["two"][m]
        if m.startswith("FCD"):
            assert v2 == pytest.approx(v, rel=1e-6) and fl2 == pytest.approx(fl, rel=1e-6), m
        else:
            assert (v2, fl2) == (v, fl), m

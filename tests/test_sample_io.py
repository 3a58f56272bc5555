"""Chunked, streamed sampling (genlab.sample_io / `genlab sample`): counts across chunks,
seeding, streamed files equal to the in-memory samples, output caps and --overwrite."""
import io

import numpy as np
import pytest
import torch

import genlab
from genlab import sample_io
from genlab.capabilities import Tags
from genlab.cli import main
from genlab.models import VAE, VAEConfig

FAST = {"epochs": 1, "max_steps": 2, "batch_size": 32, "progress": False, "seed": 0}
CORPUS = ("the quick brown fox jumps over the lazy dog.\n" * 3 + "a stitch in time saves nine.\n") * 12


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("sample_io") / "vae"
    VAE(VAEConfig(hidden=(16,), latent_dim=2)).fit("digits", FAST).save(out)
    return out


@pytest.fixture(scope="module")
def vae(vae_dir):
    return genlab.load(vae_dir)


@pytest.fixture(scope="module")
def lm():
    from genlab.data.text import text_splits

    return genlab.MODELS.get("lstm")(hidden=16, layers=1).fit(text_splits(CORPUS, block_size=16)["train"], FAST)


def test_chunks_cover_n_exactly(vae):
    sizes = [len(x) for x in sample_io.iter_chunks(vae, 10, chunk_size=4, progress=False)]
    assert sizes == [4, 4, 2]
    assert tuple(sample_io.sample_chunked(vae, 10, chunk_size=4).shape) == (10, 1, 8, 8)
    assert sample_io.chunk_size_for(vae) == 1024  # 8x8 digits: the default
    big = VAE(VAEConfig(data_shape=(3, 256, 256)))
    assert sample_io.chunk_size_for(big) == 32  # 64 MiB / (8 B x 3 x 256 x 256) = 42 -> 32, a power of two


def test_seeding_is_a_function_of_seed_and_n(vae):
    a = sample_io.sample_chunked(vae, 10, seed=1, chunk_size=4)
    assert torch.equal(a, sample_io.sample_chunked(vae, 10, seed=1, chunk_size=4))
    assert not torch.equal(a, sample_io.sample_chunked(vae, 10, seed=2, chunk_size=4))
    assert not torch.equal(a[:4], a[4:8])  # every chunk has its own generator
    # the first k of n equal -n k when k is a multiple of the chunk size
    assert torch.equal(a[:8], sample_io.sample_chunked(vae, 8, seed=1, chunk_size=4))
    # one chunk is exactly the unchunked draw with manual_seed(seed), as before chunking
    plain = vae.sample(3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(sample_io.sample_chunked(vae, 3, seed=5, chunk_size=4), plain)


def test_streamed_npy_and_csv_equal_the_in_memory_samples(vae, tmp_path):
    ref = sample_io.sample_chunked(vae, 10, seed=3, chunk_size=4).numpy()
    line = sample_io.write_samples(vae, 10, tmp_path / "s.npy", seed=3, chunk_size=4, progress=False)
    assert line == f"wrote 10 samples to {tmp_path / 's.npy'}"
    assert np.array_equal(np.load(tmp_path / "s.npy"), ref)
    sample_io.write_samples(vae, 10, tmp_path / "s.csv", seed=3, chunk_size=4, progress=False)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "s.csv", delimiter=","), ref.reshape(10, -1),
                               rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.npy"]  # no temporary files left


def test_cli_sample_spans_several_chunks(vae_dir, vae, tmp_path, capsys):
    assert main(["sample", str(vae_dir), "-n", "2500", "-o", str(tmp_path / "a.npy"), "--seed", "4"]) == 0
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (2500, 1, 8, 8)
    assert np.array_equal(a, sample_io.sample_chunked(vae, 2500, seed=4).numpy())
    assert main(["sample", str(vae_dir), "-n", "1024", "-o", str(tmp_path / "b.npy"), "--seed", "4"]) == 0
    assert np.array_equal(np.load(tmp_path / "b.npy"), a[:1024])
    assert capsys.readouterr().err == ""  # a short job off a terminal prints no progress


def test_progress_is_plain_lines_off_a_terminal(vae, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sample_io, "PROGRESS_EVERY_S", 1e-9)  # a line at every chunk
    sample_io.write_samples(vae, 10, tmp_path / "p.npy", chunk_size=4)  # several chunks: progress
    err = capsys.readouterr().err.strip().splitlines()
    assert "\r" not in "".join(err) and err[0].startswith("sampling: 4/10 samples (40%)")
    assert err[-1].startswith("sampling: 10/10 samples (100%)") and err[-1].endswith("done")
    sample_io.write_samples(vae, 3, tmp_path / "q.npy", chunk_size=4)  # one chunk: none
    assert capsys.readouterr().err == ""


def test_image_grid_is_capped_before_sampling(vae_dir, tmp_path, capsys):
    assert main(["sample", str(vae_dir), "-n", "1000000", "-o", str(tmp_path / "g.png")]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1
    assert "a grid of 1,000,000 images would be 49,001x49,001 px; grids hold at most 4,096 images: " \
           "use -o g.npy" in err[0]
    assert not (tmp_path / "g.png").exists()
    assert main(["sample", str(vae_dir), "-n", "16", "-o", str(tmp_path / "g.png")]) == 0
    assert sample_io.grid_size_px(16, (1, 8, 8)) == (197, 197)
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size == (197, 197)


def test_existing_output_is_refused_without_overwrite(vae_dir, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert main(["sample", str(vae_dir), "-n", "4", "-o", str(out)]) == 0
    before = out.read_bytes()
    assert main(["sample", str(vae_dir), "-n", "4", "-o", str(out), "--seed", "1"]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1 and str(out) in err[0] and "--overwrite" in err[0]
    assert out.read_bytes() == before
    assert main(["sample", str(vae_dir), "-n", "4", "-o", str(out), "--seed", "1", "--overwrite"]) == 0
    assert out.read_bytes() != before
    (tmp_path / "d.npy").mkdir()
    assert main(["sample", str(vae_dir), "-n", "4", "-o", str(tmp_path / "d.npy"), "--overwrite"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_npy_larger_than_the_free_disk_is_refused(tmp_path):
    class Wide:
        tags = Tags(modality="table")

        def sample(self, n, *, generator=None):
            return torch.zeros(n, 10**6)

    with pytest.raises(sample_io.SampleOutputError, match="GiB free: use a smaller -n"):
        sample_io.write_samples(Wide(), 10**9, tmp_path / "x.npy", chunk_size=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_draw_leaves_no_file(tmp_path):
    class Flaky:
        tags = Tags(modality="table")

        def sample(self, n, *, generator=None):
            if generator.initial_seed() != 7:  # chunk 0 works, the next one fails
                raise RuntimeError("boom")
            return torch.zeros(n, 3)

    with pytest.raises(RuntimeError, match="boom"):
        sample_io.write_samples(Flaky(), 10, tmp_path / "x.npy", seed=7, chunk_size=4, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_text_streams_to_txt_and_the_terminal_is_capped(lm, tmp_path):
    sample_io.write_samples(lm, 5, tmp_path / "t.txt", chunk_size=2, progress=False)
    texts = lm.samples_to_text(sample_io.sample_chunked(lm, 5, chunk_size=2))
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "".join(t + "\n" for t in texts)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    with pytest.raises(sample_io.SampleOutputError, match="at most 1,000: use -o samples.txt"):
        sample_io.write_samples(lm, 1001, stdout=Terminal())
    pipe = io.StringIO()  # not a terminal: any number, streamed
    assert sample_io.write_samples(lm, 3, stdout=pipe, chunk_size=2, progress=False) is None
    assert pipe.getvalue().count("-" * 40 + "\n") == 3


def test_bayesnet_csv_is_appended_chunk_by_chunk(tmp_path):
    from genlab.models.pgm import read_bif

    bn = read_bif("asia")
    sample_io.write_samples(bn, 25, tmp_path / "s.csv", chunk_size=10, progress=False)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert len(lines) == 26 and lines[0].startswith("asia,") and lines.count(lines[0]) == 1
    bn.write_samples(sample_io.sample_chunked(bn, 25, chunk_size=10), tmp_path / "ref.csv")
    assert (tmp_path / "ref.csv").read_text() == (tmp_path / "s.csv").read_text()
    # samples are int64 tensors of state codes (the contract), so .npy holds the codes
    sample_io.write_samples(bn, 25, tmp_path / "s.npy", chunk_size=10, progress=False)
    codes = np.load(tmp_path / "s.npy")
    assert codes.dtype == np.int64 and codes.shape == (25, 8)
    assert bn.decode(codes).labels() == bn.decode(sample_io.sample_chunked(bn, 25, chunk_size=10)).labels()


def test_music_files_across_chunks_and_overwrite(tmp_path):
    import genlab.models.sequence as S
    from genlab.pipelines import music

    scale = [(60, 4), (62, 4), (64, 4), (65, 4), (67, 8)]
    sp = music.sequences_to_splits([music.melody_tokens(scale, k) for k in range(-3, 4)] * 2,
                                   name="toy", max_tokens=16)
    m = S.LSTM(hidden=8, layers=1).fit(sp["train"], FAST)
    sample_io.write_samples(m, 5, tmp_path / "s.mid", chunk_size=2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"s_{i}.mid" for i in range(5)]
    with pytest.raises(sample_io.SampleOutputError, match="s_0.mid .and 4 more. already exists"):
        sample_io.write_samples(m, 5, tmp_path / "s.mid", chunk_size=2, progress=False)
    sample_io.write_samples(m, 5, tmp_path / "s.mid", chunk_size=2, progress=False, overwrite=True)
    assert len(list(tmp_path.iterdir())) == 5

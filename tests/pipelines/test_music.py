"""Music encoding, output files, metrics and the compose command (no corpus parsing)."""
import argparse
import importlib.util
import wave

import pytest
import torch

import genlab.models.sequence as S
from genlab.pipelines import music

SCALE = [(60, 4), (62, 4), (64, 4), (65, 4), (67, 8), (None, 4), (67, 2), (65, 2), (64, 4), (62, 4), (60, 8)]


def test_melody_tokens_round_trip():
    toks = music.melody_tokens(SCALE)
    assert toks[:4] == ["p60", "d4", "p62", "d4"] and "rest" in toks
    notes = music.melody_notes(toks)
    assert notes[:2] == [(0, 4, 60), (4, 4, 62)]
    assert notes[5] == (28, 2, 67)  # after the 8-sixteenth note and the rest of 4
    assert [p for *_, p in music.melody_notes(music.melody_tokens(SCALE, 3))] == [p + 3 for p, _ in SCALE if p]
    assert music.melody_tokens([(95, 4)], transpose=2) is None  # leaves the range
    assert music.melody_tokens([(60, 5)]) == ["p60", "d4"]  # snapped to the grid


def test_chorale_tokens_round_trip():
    voices = [[(72, 4), (74, 4)], [(67, 8)], [(64, 4), (None, 4)], [(48, 8)]]
    toks = music.chorale_tokens(voices)
    assert toks[:4] == ["p72", "p67", "p64", "p48"] and toks[4:8] == ["_", "_", "_", "_"]
    notes = sorted(music.chorale_notes(toks))
    assert notes == sorted([(0, 4, 72), (4, 4, 74), (0, 8, 67), (0, 4, 64), (0, 8, 48)])


def test_midi_wav_and_piano_roll(tmp_path):
    notes = music.melody_notes(music.melody_tokens(SCALE))
    mid = music.write_midi(notes, tmp_path / "a.mid")
    assert mid.read_bytes()[:4] == b"MThd"
    if importlib.util.find_spec("music21"):
        import music21

        back = music21.converter.parse(str(mid))
        assert [n.pitch.midi for n in back.flatten().notes] == [p for *_, p in notes]
    wav = music.render_wav(notes, tmp_path / "a.wav", sr=8000)
    with wave.open(str(wav)) as w:
        end16 = max(o + d for o, d, _ in notes)
        assert w.getframerate() == 8000 and w.getsampwidth() == 2
        assert abs(w.getnframes() / 8000 - (end16 * 0.125 + 0.5)) < 0.01
    assert music.piano_roll_png(notes, tmp_path / "a.png").stat().st_size > 1000


def test_metrics_on_known_pieces():
    c_major = [(i * 4, 4, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2)]
    assert music.estimate_key(c_major) == (0, "major")
    assert music.in_key_share(c_major) == 1.0
    m = music.music_metrics([c_major], [c_major])
    assert m["pitch_class_tv"] == 0 and m["duration_tv"] == 0
    chromatic = [(i * 2, 2, 60 + i) for i in range(12)]
    assert music.music_metrics([chromatic], [c_major])["pitch_class_tv"] > 0.3
    assert music.music_metrics([chromatic], [c_major])["duration_tv"] == 1.0
    # the 8-note motif repeats once: 12 interval 4-grams, the last 7 seen before
    # intervals 2,2,1,2,2,2,1,-12,2,2,1,2,2,2,1: the last 4 of its 12 4-grams came before
    assert music.repetition_share(c_major) == pytest.approx(4 / 12)
    assert music.repetition_share(chromatic) == pytest.approx(7 / 8)  # 8 grams of +1 steps


@pytest.fixture(scope="module")
def music_model():
    pieces = [music.melody_tokens(SCALE, k) for k in range(-5, 6)] * 3
    sp = music.sequences_to_splits(pieces, name="toy", max_tokens=24)
    torch.manual_seed(0)
    m = S.LSTM(hidden=16, layers=1).fit(sp["train"], {"epochs": 5, "batch_size": 8, "lr": 1e-2, "progress": False})
    return m, sp


def test_composer_writes_files_and_nll_per_note(music_model, tmp_path):
    m, sp = music_model
    assert music.is_music_model(m) and m.config.tokenizer == "word"
    paths = music.Composer(m)(2, out=tmp_path, generator=torch.Generator().manual_seed(0))
    assert sorted(p.name for p in paths) == ["piece_0.mid", "piece_0.png", "piece_0.wav",
                                             "piece_1.mid", "piece_1.png", "piece_1.wav"]
    nll = music.nll_per_note(m, sp["test"])
    tok_nll = float(-m.log_prob(sp["test"].x).sum())
    x = sp["test"].x
    events = sum(music.VOCAB[i] == "rest" or music.VOCAB[i].startswith("p") for i in x.flatten().tolist())
    notes = events + len(x)  # every row ends with one <eos>
    assert nll == pytest.approx(tok_nll / notes)
    assert m.write_samples(m.sample(2), tmp_path / "s.mid") and (tmp_path / "s_1.mid").is_file()
    assert not m.write_samples(m.sample(2), tmp_path / "s.png")


def test_compose_command(music_model, tmp_path):
    from genlab.commands import COMMANDS

    m, _ = music_model
    m.save(tmp_path / "model")
    p = argparse.ArgumentParser()
    compose = COMMANDS.get("compose")  # the command module registered itself
    compose.add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["compose", str(tmp_path / "model"), "-n", "1", "-o", str(tmp_path / "out"), "--no-wav"])
    assert compose.run(args) == 0
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["piece_0.mid", "piece_0.png"]

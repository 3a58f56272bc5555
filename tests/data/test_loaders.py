"""User data: image folders, .npy/.npz arrays, CSV tables."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import denormalize_table, load_array, load_image_folder, load_table
from genlab.errors import DataError


def _img(path: Path, size=(6, 5), mode="L", value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    colour = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, (w, h), colour).save(path)
    return path


# ----------------------------------------------------------------------------- image folders
def test_greyscale_folder_common_size_and_range(tmp_path):
    for i in range(3):
        _img(tmp_path / f"{i}.png", value=51 * i)
    ds = load_image_folder(tmp_path)
    assert ds.x.shape == (3, 1, 5, 6) and ds.y is None and ds.kind == "image"
    assert torch.allclose(ds.x[:, 0, 0, 0], torch.tensor([0.0, 0.2, 0.4]))


def test_rgb_chosen_when_any_image_is_colour(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.jpg", mode="RGB", value=200)
    assert load_image_folder(tmp_path).shape == (3, 5, 6)
    assert load_image_folder(tmp_path, channels=1).shape == (1, 5, 6)
    with pytest.raises(DataError, match="channels"):
        load_image_folder(tmp_path, channels=2)


def test_mixed_sizes_name_both_files_and_size_resizes(tmp_path):
    _img(tmp_path / "small.png", size=(4, 4))
    _img(tmp_path / "wide.png", size=(10, 6))
    with pytest.raises(DataError, match=r"small\.png.*4x4.*wide\.png.*6x10.*size="):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=8).x.shape == (2, 1, 8, 8)
    assert load_image_folder(tmp_path, size=(3, 7)).x.shape == (2, 1, 3, 7)


def test_class_subfolders_become_labels(tmp_path):
    _img(tmp_path / "cat" / "1.png")
    _img(tmp_path / "cat" / "2.png")
    _img(tmp_path / "ant" / "x" / "3.png")  # deeper nesting: first level is the class
    ds = load_image_folder(tmp_path)
    assert ds.classes == ["ant", "cat"]
    assert sorted(ds.y.tolist()) == [0, 1, 1]
    _img(tmp_path / "loose.png")  # one image outside a class folder: no labels
    assert load_image_folder(tmp_path).y is None


def test_bad_file_raises_naming_it_or_is_skipped(tmp_path):
    _img(tmp_path / "good.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="notes.txt"):
        load_image_folder(tmp_path)
    with pytest.warns(UserWarning, match="notes.txt"):
        ds = load_image_folder(tmp_path, on_error="skip")
    assert len(ds) == 1 and ds.meta["skipped"][0].endswith("notes.txt")


def test_truncated_png_is_caught(tmp_path):
    _img(tmp_path / "ok.png", size=(32, 32))
    noisy = (np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.png"):
        load_image_folder(tmp_path)
    with pytest.warns(UserWarning, match="cut.png"):
        assert len(load_image_folder(tmp_path, on_error="skip")) == 1


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load_image_folder(tmp_path)
    (tmp_path / ".hidden").write_text("x")
    with pytest.raises(DataError, match="empty"):
        load_image_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no readable images"):
            load_image_folder(tmp_path, on_error="skip")


# ----------------------------------------------------------------------------- arrays
def test_npy_greyscale_uint8(tmp_path):
    a = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4) * 5
    np.save(tmp_path / "a.npy", a)
    ds = load_array(tmp_path / "a.npy")
    assert ds.x.shape == (2, 1, 4, 4) and ds.kind == "image"
    assert torch.allclose(ds.x[0, 0], torch.from_numpy(a[0] / 255).float())


def test_npz_channel_last_with_labels(tmp_path):
    x = np.random.default_rng(0).random((5, 7, 6, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", images=x, labels=np.array([0, 1, 2, 1, 0]))
    ds = load_array(tmp_path / "d.npz")
    assert ds.x.shape == (5, 3, 7, 6) and ds.y.tolist() == [0, 1, 2, 1, 0]
    assert torch.allclose(ds.x[2, 1], torch.from_numpy(x[2, :, :, 1]))
    np.save(tmp_path / "cf.npy", x.transpose(0, 3, 1, 2))  # channel-first kept as is
    assert load_array(tmp_path / "cf.npy").x.shape == (5, 3, 7, 6)


def test_npz_key_choice_and_table(tmp_path):
    np.savez(tmp_path / "m.npz", a=np.ones((4, 3)), b=np.zeros((4, 2, 2)))
    with pytest.raises(DataError, match=r"key=.*\['a', 'b'\]"):
        load_array(tmp_path / "m.npz")
    t = load_array(tmp_path / "m.npz", key="a")
    assert t.kind == "table" and t.x.shape == (4, 3)


def test_float_out_of_range_rescaled_with_warning(tmp_path):
    np.save(tmp_path / "f.npy", np.linspace(-1, 3, 2 * 9).reshape(2, 3, 3))
    with pytest.warns(UserWarning, match="rescaling"):
        ds = load_array(tmp_path / "f.npy")
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0


def test_nan_reports_count_and_position(tmp_path):
    a = np.zeros((6, 4, 4), dtype=np.float32)
    a[3, 1, 1] = np.nan
    a[5, 0, 0] = np.inf
    np.save(tmp_path / "n.npy", a)
    with pytest.raises(DataError, match=r"n\.npy.*2 NaN/inf.*\[3, 5\]"):
        load_array(tmp_path / "n.npy")


def test_object_array_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="o.npy.*pickle"):
        load_array(tmp_path / "o.npy")


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5, 6), (3, 5, 5, 7)])
def test_bad_shapes(tmp_path, shape):
    np.save(tmp_path / "s.npy", np.zeros(shape))
    with pytest.raises(DataError, match="shape"):
        load_array(tmp_path / "s.npy")


def test_corrupt_array_file(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match="bad.npy"):
        load_array(tmp_path / "bad.npy")


# ----------------------------------------------------------------------------- CSV
def test_csv_standardised_and_invertible(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,kind\n1,10,x\n2,20,y\n3,30,x\n4, 40 ,z\n")
    ds = load_table(p, label="kind")
    assert ds.kind == "table" and ds.columns == ["a", "b"]
    assert ds.classes == ["x", "y", "z"] and ds.y.tolist() == [0, 1, 0, 2]
    assert torch.allclose(ds.x.mean(0), torch.zeros(2), atol=1e-6)
    back = denormalize_table(ds, ds.x)
    assert torch.allclose(back, torch.tensor([[1.0, 10], [2, 20], [3, 30], [4, 40]]), atol=1e-5)


def test_csv_text_column_and_missing_values(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,name,b\n1,ann,2\n,bob,3\n3,cy,NA\n5,dee,7\n")
    with pytest.raises(DataError, match="column 'name' is not numeric.*drop_text"):
        load_table(p)
    with pytest.raises(DataError, match="column 'a' has 1 missing.*clean="):
        load_table(p, drop_text=True)
    ds = load_table(p, drop_text=True, clean="drop")
    assert len(ds) == 2 and ds.meta["dropped_columns"] == ["name"]
    ds = load_table(p, drop_text=True, clean={"missing": "median"})
    assert len(ds) == 4
    assert denormalize_table(ds, ds.x)[1, 0].item() == pytest.approx(3.0)


def test_csv_label_rows_dropped_stay_aligned(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("f;y\n1;0\n?;1\n3;\n4;1\n")  # semicolons, missing feature and label
    with pytest.raises(DataError, match="label column 'y' has 1 missing"):
        load_table(p, label="y")
    ds = load_table(p, label="y", clean="drop")
    assert denormalize_table(ds, ds.x)[:, 0].tolist() == pytest.approx([1.0, 4.0])
    assert ds.y.tolist() == [0, 1]


def test_csv_errors_name_the_problem(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match="line 3"):
        load_table(p)
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_table(tmp_path / "e.csv")
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no label column 'c'"):
        load_table(p, label="c")

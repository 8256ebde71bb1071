"""Tests of pyromix.data: datasets, IDX files, user data, binarisation, batching, errors."""

import doctest
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import pyromix.data
from pyromix.data import (
    DATASETS,
    DataError,
    Dataset,
    Split,
    batches,
    binarize,
    load_dataset,
)

IDX_STEMS = {
    "train-images-idx3-ubyte": 2051,
    "train-labels-idx1-ubyte": 2049,
    "t10k-images-idx3-ubyte": 2051,
    "t10k-labels-idx1-ubyte": 2049,
}


@pytest.fixture(autouse=True)
def no_installed_data(monkeypatch, tmp_path):
    """Make results independent of PYROMIX_DATA and of an installed dataset-fashion-mnist."""
    monkeypatch.delenv("PYROMIX_DATA", raising=False)
    system = tmp_path / "system-fashion-mnist"
    monkeypatch.setattr(pyromix.data.idx, "_SYSTEM_DIRS", {"fashion-mnist": (str(system),)})
    return system


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    payload = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def make_idx_dir(directory: Path, *, gz: bool, n_train=12, n_test=5, shape=(4, 3), seed=1):
    """Tiny IDX files with non-square images (to catch a transposed flattening); returns arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *shape)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for stem, array in arrays.items():
        write_idx(directory / (stem + (".gz" if gz else "")), array, IDX_STEMS[stem])
    return arrays


def rows_sorted(x: np.ndarray) -> np.ndarray:
    return x[np.lexsort(x.T[::-1])]


def indexed_data(n=40, d=6, seed=0):
    """Intensities in [0, 1] labelled by row index, so batches reveal which points they hold."""
    x = np.random.default_rng(seed).random((n, d))
    return x, np.arange(n)


# ---------------------------------------------------------------- digits


def test_digits_shapes_range_labels_and_split_sizes():
    ds = load_dataset()
    assert ds.name == "digits" and ds.image_shape == (8, 8) and ds.data_dim == 64
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1258, 180, 359)
    for s in (ds.train, ds.val, ds.test):
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.x.min() >= 0 and s.x.max() == 1
    assert ds.num_classes == 10 and set(ds.train.y.tolist()) == set(range(10))
    assert not ds.is_binary


def test_digits_splits_partition_the_data_with_labels_attached():
    ds = load_dataset()
    digits = load_digits()
    ours = np.concatenate(
        [np.c_[s.x.numpy() * 16, s.y.numpy()] for s in (ds.train, ds.val, ds.test)]
    )
    theirs = np.c_[digits.data, digits.target]
    np.testing.assert_allclose(rows_sorted(np.round(ours)), rows_sorted(theirs))


def test_digits_split_depends_on_seed_only():
    a, b, c = load_dataset(seed=3), load_dataset(seed=3), load_dataset(seed=4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_fractions_and_limit_set_split_sizes():
    ds = load_dataset("digits", val_fraction=0.3, test_fraction=0.1)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1078, 539, 180)
    small = load_dataset("digits", limit=50)
    assert (len(small.train), len(small.val), len(small.test)) == (50, 50, 50)
    assert torch.equal(small.train.x, load_dataset("digits").train.x[:50])


# ---------------------------------------------------------------- MNIST / Fashion-MNIST IDX


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_round_trip_via_data_dir(tmp_path, gz, name):
    arrays = make_idx_dir(tmp_path / "idx", gz=gz)
    ds = load_dataset(name, data_dir=tmp_path / "idx")
    assert ds.name == name and ds.image_shape == (4, 3) and ds.data_dim == 12
    assert (len(ds.train), len(ds.val), len(ds.test)) == (10, 2, 5)  # val = 1/6 of train
    train_images = arrays["train-images-idx3-ubyte"].reshape(12, -1)
    official = np.c_[train_images, arrays["train-labels-idx1-ubyte"]]
    ours = np.concatenate([np.c_[s.x.numpy() * 255, s.y.numpy()] for s in (ds.train, ds.val)])
    np.testing.assert_allclose(rows_sorted(np.round(ours)), rows_sorted(official))
    # The official test set, in its order, flattened row-major.
    np.testing.assert_allclose(
        ds.test.x.numpy() * 255, arrays["t10k-images-idx3-ubyte"].reshape(5, -1), atol=1e-4
    )
    assert ds.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    other = load_dataset(name, data_dir=tmp_path / "idx", seed=1)
    assert not torch.equal(ds.val.y, other.val.y) or not torch.equal(ds.val.x, other.val.x)


@pytest.mark.parametrize("subfolder", [False, True])
def test_idx_found_via_pyromix_data(tmp_path, monkeypatch, subfolder):
    root = tmp_path / "store"
    arrays = make_idx_dir(root / "fashion-mnist" if subfolder else root, gz=True)
    monkeypatch.setenv("PYROMIX_DATA", str(root))
    ds = load_dataset("fashion-mnist")
    assert ds.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_idx_data_dir_comes_before_pyromix_data(tmp_path, monkeypatch):
    mine = make_idx_dir(tmp_path / "mine", gz=False, seed=1)
    make_idx_dir(tmp_path / "env", gz=False, seed=2)
    monkeypatch.setenv("PYROMIX_DATA", str(tmp_path / "env"))
    ds = load_dataset("mnist", data_dir=tmp_path / "mine")
    assert ds.test.y.tolist() == mine["t10k-labels-idx1-ubyte"].tolist()


def test_fashion_mnist_found_in_system_directory(no_installed_data):
    arrays = make_idx_dir(no_installed_data, gz=True)
    ds = load_dataset("fashion-mnist")
    assert ds.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_missing_idx_files_error_lists_directories_and_files(tmp_path, monkeypatch):
    monkeypatch.setenv("PYROMIX_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    message = str(info.value)
    for part in (tmp_path / "nowhere", tmp_path / "env", tmp_path / "env" / "mnist"):
        assert str(part) in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "--data-dir" in message and "download" in message.lower()


def test_missing_fashion_mnist_error_says_how_to_install(no_installed_data):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as info:
        load_dataset("fashion-mnist")
    assert str(no_installed_data) in str(info.value) and "PYROMIX_DATA" in str(info.value)


def test_partial_idx_directory_names_missing_file(tmp_path):
    make_idx_dir(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)


def test_wrong_magic_number_names_file(tmp_path):
    make_idx_dir(tmp_path, gz=False)
    bad = tmp_path / "train-images-idx3-ubyte"
    write_idx(bad, np.zeros(12, dtype=np.uint8), 2049)  # a labels file in the images' place
    with pytest.raises(DataError, match="magic number 2049, expected 2051") as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_file_names_file(tmp_path, gz):
    make_idx_dir(tmp_path, gz=gz)
    bad = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    raw = gzip.decompress(bad.read_bytes()) if gz else bad.read_bytes()
    bad.write_bytes(gzip.compress(raw[:-7]) if gz else raw[:-7])
    with pytest.raises(DataError, match="truncated") as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(bad) in str(info.value)


def test_corrupt_gzip_names_file(tmp_path):
    make_idx_dir(tmp_path, gz=True)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:20])
    with pytest.raises(DataError, match="decompress") as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(bad) in str(info.value)


def test_idx_image_and_label_counts_must_match(tmp_path):
    make_idx_dir(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11), 2049)
    with pytest.raises(DataError, match="12 images but .* 11 labels"):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_installed_fashion_mnist_has_the_papers_splits():
    ds = load_dataset("fashion-mnist", data_dir="/usr/share/datasets/fashion-mnist")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (50_000, 10_000, 10_000)
    assert ds.image_shape == (28, 28) and ds.num_classes == 10
    assert ds.test.y[:3].tolist() == [9, 2, 1]  # ankle boot, pullover, trouser


# ---------------------------------------------------------------- synthetic datasets


def test_onehot_sizes_and_one_hotness():
    ds = load_dataset("onehot")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1000, 100, 1000)
    assert ds.image_shape is None and ds.data_dim == 4 and ds.is_binary and ds.num_classes == 4
    for s in (ds.train, ds.val, ds.test):
        assert torch.equal(s.x.sum(1), torch.ones(len(s)))
        assert torch.equal(s.x.argmax(1), s.y)
    counts = torch.bincount(ds.train.y, minlength=4)
    assert counts.min() > 200 and counts.max() < 300  # uniform: 250 +- 14 each
    assert torch.equal(ds.train.x, load_dataset("onehot").train.x)
    assert not torch.equal(ds.train.x, load_dataset("onehot", seed=1).train.x)


def test_mixture1d_components():
    ds = load_dataset("mixture1d")
    assert ds.data_dim == 1 and ds.image_shape is None and ds.num_classes == 2
    assert len(ds.train) + len(ds.val) + len(ds.test) == 50_000
    assert (len(ds.val), len(ds.test)) == (5000, 10_000)
    x = torch.cat([ds.train.x, ds.val.x, ds.test.x])[:, 0].double()
    y = torch.cat([ds.train.y, ds.val.y, ds.test.y])
    assert abs((y == 0).double().mean().item() - 0.5) < 0.01
    for component, mean in enumerate([0.3, 0.7]):
        xs = x[y == component]
        assert abs(xs.mean().item() - mean) < 0.002  # standard error 0.0003
        assert abs(xs.std().item() - 0.05) < 0.002


# ---------------------------------------------------------------- user data


def test_user_array_without_labels():
    x = np.random.default_rng(0).normal(size=(30, 5))
    ds = load_dataset(x)
    assert ds.name == "array" and ds.image_shape is None and ds.data_dim == 5
    assert (len(ds.train), len(ds.val), len(ds.test)) == (21, 3, 6)
    assert ds.train.y is None and ds.num_classes is None
    np.testing.assert_allclose(
        rows_sorted(torch.cat([ds.train.x, ds.val.x, ds.test.x]).numpy()),
        rows_sorted(x.astype(np.float32)),
    )


def test_user_tensor_with_labels_keeps_pairs():
    x, index = indexed_data()
    ds = load_dataset(torch.from_numpy(x), labels=torch.from_numpy(index))
    for s in (ds.train, ds.val, ds.test):
        np.testing.assert_allclose(s.x.numpy(), x[s.y.numpy()].astype(np.float32))
    assert ds.num_classes == 40


def test_user_images_are_flattened_row_major():
    images = np.random.default_rng(0).random((20, 3, 5))
    ds = load_dataset(images, labels=np.arange(20))
    assert ds.image_shape == (3, 5) and ds.data_dim == 15
    i = ds.train.y[0].item()
    np.testing.assert_allclose(ds.train.x[0].numpy(), images[i].reshape(-1), rtol=1e-6)


def test_smallest_user_data_gets_a_point_in_every_split():
    ds = load_dataset(np.eye(3))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1, 1, 1)


@pytest.mark.parametrize("with_labels", [False, True])
def test_user_npy(tmp_path, with_labels):
    x, index = indexed_data()
    np.save(tmp_path / "points.npy", x)
    np.save(tmp_path / "y.npy", index)
    ds = load_dataset(
        tmp_path / "points.npy", labels=str(tmp_path / "y.npy") if with_labels else None
    )
    assert ds.name == "points" and ds.data_dim == 6
    if with_labels:
        np.testing.assert_allclose(ds.test.x.numpy(), x[ds.test.y.numpy()].astype(np.float32))
    else:
        assert ds.test.y is None


@pytest.mark.parametrize("x_key, y_key", [("x", "y"), ("X", None), ("data", "labels")])
def test_user_npz_keys(tmp_path, x_key, y_key):
    x, index = indexed_data()
    arrays = {x_key: x, **({y_key: index} if y_key else {})}
    np.savez(tmp_path / "set.npz", **arrays)
    ds = load_dataset(str(tmp_path / "set.npz"))
    assert ds.name == "set" and ds.data_dim == 6
    if y_key:
        np.testing.assert_allclose(ds.val.x.numpy(), x[ds.val.y.numpy()].astype(np.float32))
    else:
        assert ds.val.y is None


def test_user_npz_single_array_and_label_override(tmp_path):
    x, index = indexed_data()
    np.savez(tmp_path / "one.npz", anything=x)
    assert load_dataset(tmp_path / "one.npz").data_dim == 6
    np.savez(tmp_path / "two.npz", x=x, y=np.zeros(40))
    ds = load_dataset(tmp_path / "two.npz", labels=index)
    assert ds.num_classes == 40  # the explicit labels won over the file's


@pytest.mark.parametrize("header", [False, True])
def test_user_csv_with_and_without_header(tmp_path, header):
    x, index = indexed_data()
    lines = ([",".join(f"f{j}" for j in range(6))] if header else []) + [
        ",".join(repr(float(v)) for v in row) for row in x
    ]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.csv").write_text("label\n" + "\n".join(map(str, index)) + "\n")
    ds = load_dataset(tmp_path / "table.csv", labels=tmp_path / "labels.csv")
    assert ds.name == "table" and len(ds.train) + len(ds.val) + len(ds.test) == 40
    np.testing.assert_allclose(ds.train.x.numpy(), x[ds.train.y.numpy()].astype(np.float32))


# ---------------------------------------------------------------- errors


def test_unknown_name_lists_choices_and_paths():
    with pytest.raises(DataError) as info:
        load_dataset("cifar")
    message = str(info.value)
    assert "'cifar'" in message and ".npy" in message and ".csv" in message
    assert all(name in message for name in DATASETS)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="not found") as info:
        load_dataset(tmp_path / "absent.npy")
    assert str(tmp_path / "absent.npy") in str(info.value)
    (tmp_path / "points.txt").write_text("1,2\n")
    with pytest.raises(DataError, match=r"\.npy, \.npz or \.csv"):
        load_dataset(tmp_path / "points.txt")
    with pytest.raises(DataError, match="labels file not found"):
        load_dataset(np.zeros((5, 2)), labels=tmp_path / "absent.csv")


def test_non_finite_values_are_counted_and_located():
    x = np.zeros((10, 4))
    x[5, 2], x[7, 0] = np.nan, np.inf
    with pytest.raises(DataError, match=r"2 NaN or inf values.*\(5, 2\)"):
        load_dataset(x)


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 5), ()])
def test_wrong_ndim(shape):
    with pytest.raises(DataError, match=r"\(N, D\) or \(N, H, W\)"):
        load_dataset(np.zeros(shape))


def test_too_few_points_or_features():
    with pytest.raises(DataError, match="at least 3 points"):
        load_dataset(np.zeros((2, 4)))
    with pytest.raises(DataError, match="at least 1 feature"):
        load_dataset(np.zeros((5, 0)))


def test_non_numeric_data(tmp_path):
    with pytest.raises(DataError, match="numeric"):
        load_dataset(np.array([["a", "b"]] * 4))
    (tmp_path / "words.csv").write_text("a,b\n1,2\nx,y\n")
    with pytest.raises(DataError, match="words.csv.*numeric"):
        load_dataset(tmp_path / "words.csv")


def test_npz_with_unclear_keys_lists_them(tmp_path):
    np.savez(tmp_path / "many.npz", first=np.zeros((5, 2)), second=np.zeros((5, 2)))
    with pytest.raises(DataError, match="first, second"):
        load_dataset(tmp_path / "many.npz")


def test_bad_binarize_choice_lists_choices():
    with pytest.raises(DataError, match="'none', 'static', 'dynamic'; got 'yes'"):
        load_dataset("onehot", binarize="yes")


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_binarize_needs_unit_interval(mode):
    x = np.linspace(-1, 2, 20).reshape(10, 2)
    with pytest.raises(DataError, match="min -1, max 2"):
        load_dataset(x, binarize=mode)
    with pytest.raises(DataError, match=r"\[0, 1\].*min -1, max 2"):
        binarize(torch.from_numpy(x))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction"),
        ({"limit": 0}, "limit"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_options_name_the_argument(kwargs, argument):
    with pytest.raises(DataError, match=argument):
        load_dataset("onehot", **kwargs)


def test_bad_labels():
    x = np.zeros((10, 2))
    with pytest.raises(DataError, match=r"labels must have shape \(10,\).*\(9,\)"):
        load_dataset(x, labels=np.arange(9))
    with pytest.raises(DataError, match="integers"):
        load_dataset(x, labels=np.linspace(0, 1, 10))
    with pytest.raises(DataError, match="only for user data"):
        load_dataset("digits", labels=np.arange(1797))


def test_bad_batch_size():
    with pytest.raises(DataError, match="batch_size must be a positive integer; got 0"):
        next(batches(Split(torch.zeros(4, 2)), 0))


def test_split_checks_shapes():
    with pytest.raises(DataError, match="Split.y"):
        Split(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))


# ---------------------------------------------------------------- binarisation


def test_static_binarisation_is_binary_repeatable_and_unbiased():
    ds = load_dataset("digits", binarize="static")
    again = load_dataset("digits", binarize="static")
    other = load_dataset("digits", binarize="static", seed=1)
    plain = load_dataset("digits")
    assert ds.is_binary and ds.binarize == "static"
    for s, p in zip((ds.train, ds.val, ds.test), (plain.train, plain.val, plain.test)):
        assert set(s.x.unique().tolist()) == {0.0, 1.0} and torch.equal(s.y, p.y)
    for s, a, o in zip((ds.train, ds.test), (again.train, again.test), (other.train, other.test)):
        assert torch.equal(s.x, a.x) and not torch.equal(s.x, o.x)
    assert abs(ds.train.x.mean() - plain.train.x.mean()) < 0.01  # standard error ~0.002


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_heldout_binarisation_follows_the_seed(mode):
    # Identical points make every split the same whatever the permutation, so only the
    # binarisation draws can differ between seeds.
    x = np.full((60, 8), 0.5)
    a, b, c = (load_dataset(x, binarize=mode, seed=seed) for seed in (0, 0, 1))
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.test.x, c.test.x) and not torch.equal(a.val.x, c.val.x)


def test_dynamic_keeps_train_intensities_and_shares_heldout_draws_with_static():
    dynamic = load_dataset("digits", binarize="dynamic")
    static = load_dataset("digits", binarize="static")
    assert dynamic.is_binary
    assert torch.equal(dynamic.train.x, load_dataset("digits").train.x)
    assert torch.equal(dynamic.val.x, static.val.x) and torch.equal(dynamic.test.x, static.test.x)


def test_dynamic_batches_are_fresh_repeatable_and_unbiased():
    x, index = indexed_data()
    ds = load_dataset(x, labels=index, binarize="dynamic", val_fraction=0, test_fraction=0)
    p = ds.train.x[ds.train.y.argsort()]

    def epochs(seed, n):
        generator = torch.Generator().manual_seed(seed)
        out = []
        for _ in range(n):
            xb, yb = zip(*ds.train_batches(16, generator))
            xs, ys = torch.cat(xb), torch.cat(yb)
            out.append(xs[ys.argsort()])  # back in point order
        return torch.stack(out)

    draws = epochs(0, 400)
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(draws[:3], epochs(0, 3)) and not torch.equal(draws[:3], epochs(1, 3))
    assert (draws.mean(0) - p).abs().max() < 0.13  # 5 standard errors of a mean of 400
    assert abs(draws.mean() - p.mean()) < 0.01


def test_binarize_function():
    generator = torch.Generator().manual_seed(0)
    x = torch.full((20_000,), 0.3)
    draw = binarize(x, generator)
    assert set(draw.unique().tolist()) == {0.0, 1.0} and abs(draw.mean() - 0.3) < 0.02
    assert torch.equal(binarize(x, torch.Generator().manual_seed(0)), draw)
    assert torch.equal(binarize(torch.tensor([0.0, 1.0])), torch.tensor([0.0, 1.0]))
    with pytest.raises(DataError, match="1 NaN"):
        binarize(torch.tensor([0.5, float("nan")]))


# ---------------------------------------------------------------- batching


def test_train_batches_cover_each_point_once_per_epoch_in_new_orders():
    x, index = indexed_data(n=103)
    ds = load_dataset(x, labels=index)
    generator = torch.Generator().manual_seed(0)
    orders = []
    for _ in range(2):
        pairs = list(ds.train_batches(10, generator))
        assert [len(b) for b, _ in pairs] == [10] * 7 + [2]  # 72 train points, last batch kept
        ys = torch.cat([y for _, y in pairs])
        assert sorted(ys.tolist()) == sorted(ds.train.y.tolist())
        for b, y in pairs:
            np.testing.assert_allclose(b.numpy(), x[y.numpy()].astype(np.float32))
        orders.append(ys)
    assert not torch.equal(orders[0], orders[1]) and not torch.equal(orders[0], ds.train.y)


def test_ordered_batches_rebuild_the_split():
    split = load_dataset("onehot").test
    xs, ys = zip(*batches(split, 300))
    assert [len(x) for x in xs] == [300, 300, 300, 100]
    assert torch.equal(torch.cat(xs), split.x) and torch.equal(torch.cat(ys), split.y)


def test_batches_with_a_cpu_generator_on_another_device():
    # The meta device stands in for a GPU: the data live where the generator does not.
    ds = load_dataset("onehot", binarize="dynamic").to("meta")
    assert ds.train.x.device.type == "meta" and ds.test.y.device.type == "meta"
    shapes = [(x.device.type, tuple(x.shape)) for x, _ in ds.train_batches(400, torch.Generator())]
    assert shapes == [("meta", (400, 4)), ("meta", (400, 4)), ("meta", (200, 4))]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_match_cpu_batches_for_the_same_generator_seed():
    ds = load_dataset("digits", binarize="dynamic")
    cpu = list(ds.train_batches(100, torch.Generator().manual_seed(0)))
    gpu = list(ds.to("cuda").train_batches(100, torch.Generator().manual_seed(0)))
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert xg.is_cuda and torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())


# ---------------------------------------------------------------- the module


def test_dataset_names_and_docstring_examples():
    assert list(DATASETS) == ["digits", "mnist", "fashion-mnist", "onehot", "mixture1d"]
    assert isinstance(load_dataset("onehot"), Dataset)
    results = [
        doctest.testmod(module)
        for module in (pyromix.data.containers, pyromix.data.loading, pyromix.data.registry)
    ]
    assert all(r.failed == 0 for r in results) and all(r.attempted > 0 for r in results)

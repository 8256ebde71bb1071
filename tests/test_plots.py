"""Tests for pyromix.plots: every figure is read back from its file and its pixels checked."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.image
import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.decomposition import PCA as _PCA

from pyromix import plots

# imread gives RGBA floats in [0, 1]; the gray colour map and PNG's 8 bits are exact to 1/255.
ATOL = 0.02


def _read(path) -> np.ndarray:
    """The RGB pixels of a written PNG, after checking it is a real, non-blank picture."""
    assert path.exists()
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01, "the picture is blank"
    return image[..., :3]


def _grid_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a tiled grid, found from its 0.5-grey padding lines.

    The outer padding rows and columns run the full length of the grid, so they hold the most
    grey pixels; text antialiasing leaves only a few scattered grey pixels."""
    grey = (np.abs(rgb - 0.5) < ATOL).all(-1)
    rows, cols = grey.sum(1), grey.sum(0)
    rows, cols = np.flatnonzero(rows > 0.5 * rows.max()), np.flatnonzero(cols > 0.5 * cols.max())
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _tile_value(rgb, box, grid_rows, grid_cols, height, width, r, c) -> float:
    """The grey level at the centre of tile (r, c) of a grid of (height, width) images."""
    top, bottom, left, right = box
    y = 1 + r * (height + 1) + height / 2
    x = 1 + c * (width + 1) + width / 2
    py = top + y * (bottom - top) / (grid_rows * (height + 1) + 1)
    px = left + x * (right - left) / (grid_cols * (width + 1) + 1)
    return float(rgb[int(py), int(px)].mean())


def _count(rgb, colour, tol=0.08) -> int:
    return int((np.abs(rgb - np.asarray(colour)) < tol).all(-1).sum())


C0, C1 = matplotlib.colors.to_rgb("C0"), matplotlib.colors.to_rgb("C1")


def _on_white(colour, alpha):
    """The colour a translucent mark of ``colour`` has on a white background."""
    return tuple(alpha * v + (1 - alpha) for v in colour)


@pytest.fixture
def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data[:64] / 16.0


# ------------------------------------------------------------------------------ image_grid


def test_image_grid_puts_each_image_in_its_tile(tmp_path):
    # Six constant 8x8 tiles, 3 per row: black and white included, all levels distinct.
    levels = [0.0, 1.0, 0.2, 0.8, 0.35, 0.65]
    images = torch.tensor(levels)[:, None, None].expand(6, 8, 8)
    out = plots.image_grid(images, (8, 8), tmp_path / "grid.png", nrow=3)
    assert out == tmp_path / "grid.png"
    rgb = _read(out)
    box = _grid_box(rgb)
    top, bottom, left, right = box
    # 2 rows x 3 columns of 8 px tiles with 1 px padding: 19 x 28 grid pixels.
    assert (bottom - top) / (right - left) == pytest.approx(19 / 28, rel=0.05)
    for k, level in enumerate(levels):
        assert _tile_value(rgb, box, 2, 3, 8, 8, k // 3, k % 3) == pytest.approx(level, abs=ATOL)


def test_image_grid_keeps_pixel_orientation_of_flat_images(tmp_path):
    # A checkerboard whose brightness grows down the rows: a transpose or a column-major
    # reshape of the flat (1, 64) input would move the bright squares.
    rows, cols = np.indices((8, 8))
    image = ((rows + cols) % 2) * (0.2 + 0.1 * rows)
    rgb = _read(plots.image_grid(image.reshape(1, 64), (8, 8), tmp_path / "one.png"))
    box = _grid_box(rgb)
    top, bottom, left, right = box
    for r in range(8):
        for c in range(8):
            py = top + (1.5 + r) * (bottom - top) / 10
            px = left + (1.5 + c) * (right - left) / 10
            assert rgb[int(py), int(px)].mean() == pytest.approx(image[r, c], abs=ATOL), (r, c)


def test_image_grid_default_is_near_square_and_accepts_a_title(tmp_path, digits):
    rgb = _read(plots.image_grid(digits[:10], (8, 8), tmp_path / "g.png", title="Ten digits"))
    top, bottom, left, right = _grid_box(rgb)
    # ceil(sqrt(10)) = 4 per row, so 3 rows x 4 columns.
    assert (bottom - top) / (right - left) == pytest.approx(28 / 37, rel=0.05)


def test_image_grid_leaves_pyplot_alone(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    figures, backend = plt.get_fignums(), matplotlib.get_backend()
    plots.image_grid(np.zeros((4, 4)), (2, 2), tmp_path / "quiet.png")
    assert plt.get_fignums() == figures and matplotlib.get_backend() == backend


def test_image_grid_writes_other_formats_into_new_folders(tmp_path):
    out = plots.image_grid(np.random.rand(4, 9), (3, 3), str(tmp_path / "a" / "b" / "grid.pdf"))
    assert out == tmp_path / "a" / "b" / "grid.pdf"
    assert out.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "images, image_shape, kwargs, words",
    [
        (np.zeros((5, 63)), (8, 8), {}, ["images", "(N, 64)", "(5, 63)"]),
        (np.zeros((5, 7, 8)), (8, 8), {}, ["images", "(N, 8, 8)", "(5, 7, 8)"]),
        (np.zeros(64), (8, 8), {}, ["images", "(64,)"]),
        (np.zeros((0, 64)), (8, 8), {}, ["images", "non-empty", "(0, 64)"]),
        (np.zeros((5, 64)), (8,), {}, ["image_shape", "(8,)"]),
        (np.zeros((5, 64)), (8, 8), {"nrow": 0}, ["nrow", ">= 1", "0"]),
    ],
)
def test_image_grid_rejects_bad_input(tmp_path, images, image_shape, kwargs, words):
    with pytest.raises(ValueError) as error:
        plots.image_grid(images, image_shape, tmp_path / "bad.png", **kwargs)
    for word in words:
        assert word in str(error.value)
    assert not (tmp_path / "bad.png").exists()


def test_bad_extension_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r"path: expected .*\.png.*got .*grid\.xyz"):
        plots.image_grid(np.zeros((1, 4)), (2, 2), tmp_path / "grid.xyz")
    assert not (tmp_path / "grid.xyz").exists()


# ------------------------------------------------------------------------------ plot_samples


def test_plot_samples_draws_means_then_binarised(tmp_path):
    means, binary = torch.zeros(16, 64), torch.ones(16, 64)
    one = _read(plots.plot_samples(means, tmp_path / "one.png", image_shape=(8, 8)))
    rgb = _read(
        plots.plot_samples(means, tmp_path / "two.png", image_shape=(8, 8), binarized=binary)
    )
    assert rgb.shape[1] > 1.6 * one.shape[1]
    half = rgb.shape[1] // 2
    black = (rgb < 0.05).all(-1)
    # The means (0, black) fill the left panel; the binarised samples (1, white) the right.
    assert black[:, :half].mean() > 0.2 and black[:, half:].mean() < 0.02


def test_plot_samples_row_labels_make_equal_rows(tmp_path, digits):
    rgb = _read(
        plots.plot_samples(
            digits[:8],
            tmp_path / "rows.png",
            image_shape=(8, 8),
            row_labels=["cluster 0", "cluster 1"],
        )
    )
    top, bottom, left, right = _grid_box(rgb)
    # 2 rows of 4, where the default layout would be 3 x 3.
    assert (bottom - top) / (right - left) == pytest.approx(19 / 37, rel=0.05)
    # The labels sit to the left of the grid: dark text pixels there.
    assert (rgb[top:bottom, :left] < 0.3).all(-1).sum() > 20


def test_plot_samples_of_1d_data_overlays_model_and_data(tmp_path):
    rng = np.random.default_rng(0)
    model_only = _read(plots.plot_samples(rng.normal(size=(500, 1)), tmp_path / "m.png"))
    both = _read(
        plots.plot_samples(
            torch.randn(500), tmp_path / "md.png", data=rng.normal(1.0, 1.0, size=300)
        )
    )
    # The model's bars are blue (C0); the data's orange (C1) bars appear only when given.
    orange = _on_white(C1, 0.6)
    assert _count(model_only, _on_white(C0, 0.6)) > 500
    assert _count(model_only, orange) < 20 and _count(both, orange) > 500


def test_plot_samples_of_one_hot_data_shows_heat_map_and_means(tmp_path):
    rng = np.random.default_rng(0)
    one_hot = np.eye(4)[rng.integers(0, 4, 200)]
    alone = _read(plots.plot_samples(one_hot, tmp_path / "h.png"))
    rgb = _read(plots.plot_samples(one_hot, tmp_path / "hd.png", data=np.eye(4)[[0, 1, 2, 3]]))
    viridis_top, viridis_bottom = (0.993, 0.906, 0.144), (0.267, 0.005, 0.329)
    assert _count(alone, viridis_top) > 1000 and _count(alone, viridis_bottom) > 1000
    assert rgb.shape[1] > 1.5 * alone.shape[1]
    assert _count(rgb, C0, 0.02) > 500 and _count(rgb, C1, 0.02) > 500  # model and data bars


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"means": np.zeros((5, 63)), "image_shape": (8, 8)}, ["means", "(N, 64)", "(5, 63)"]),
        (
            {"means": np.zeros((5, 64)), "image_shape": (8, 8), "binarized": np.zeros((4, 64))},
            ["binarized", "(5, 8, 8)", "(4, 8, 8)"],
        ),
        (
            {"means": np.zeros((5, 64)), "image_shape": (8, 8), "row_labels": ["a", "b"]},
            ["row_labels", "5 images", "2 labels"],
        ),
        (
            {"means": np.zeros((5, 64)), "image_shape": (8, 8), "data": np.zeros((5, 64))},
            ["data", "image data"],
        ),
        ({"means": np.zeros((5, 4)), "binarized": np.zeros((5, 4))}, ["binarized", "non-image"]),
        ({"means": np.zeros((5, 4)), "data": np.zeros((5, 3))}, ["data", "4 column", "(5, 3)"]),
        ({"means": np.zeros((5, 4, 4))}, ["means", "(N, D)", "(5, 4, 4)"]),
        ({"means": np.array([1.0, np.nan])}, ["means", "finite", "1 NaN"]),
        ({"means": []}, ["means", "non-empty"]),
    ],
)
def test_plot_samples_rejects_bad_input(tmp_path, kwargs, words):
    with pytest.raises(ValueError) as error:
        plots.plot_samples(path=tmp_path / "bad.png", **kwargs)
    for word in words:
        assert word in str(error.value)


# ------------------------------------------------------------------------- plot_reconstructions


def test_plot_reconstructions_puts_originals_above_reconstructions(tmp_path):
    x, x_recon = np.zeros((30, 64)), np.ones((30, 64))
    rgb = _read(plots.plot_reconstructions(x, x_recon, (8, 8), tmp_path / "r.png", n=20))
    box = _grid_box(rgb)
    # 20 images wrap into 2 pairs of rows of 16; the second pair has 4, then grey blanks.
    top, bottom, left, right = box
    assert (bottom - top) / (right - left) == pytest.approx(37 / 145, rel=0.05)
    for c in range(16):
        expected = (0.0, 1.0) if c < 4 else (0.5, 0.5)
        assert _tile_value(rgb, box, 4, 16, 8, 8, 0, c) == pytest.approx(0.0, abs=ATOL)
        assert _tile_value(rgb, box, 4, 16, 8, 8, 1, c) == pytest.approx(1.0, abs=ATOL)
        assert _tile_value(rgb, box, 4, 16, 8, 8, 2, c) == pytest.approx(expected[0], abs=ATOL)
        assert _tile_value(rgb, box, 4, 16, 8, 8, 3, c) == pytest.approx(expected[1], abs=ATOL)


def test_plot_reconstructions_of_digits_with_fewer_than_n(tmp_path, digits):
    noisy = np.clip(digits + 0.1 * np.random.default_rng(0).normal(size=digits.shape), 0, 1)
    rgb = _read(
        plots.plot_reconstructions(torch.tensor(digits[:5]), noisy[:5], (8, 8), tmp_path / "r.png")
    )
    top, bottom, left, right = _grid_box(rgb)
    assert (bottom - top) / (right - left) == pytest.approx(19 / 46, rel=0.05)  # 2 rows of 5


def test_plot_reconstructions_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"x_recon: expected the shape of x \(4, 2, 2\)"):
        plots.plot_reconstructions(np.zeros((4, 4)), np.zeros((3, 4)), (2, 2), tmp_path / "r.png")
    with pytest.raises(ValueError, match="n: expected an integer >= 1, got 0"):
        plots.plot_reconstructions(
            np.zeros((4, 4)), np.zeros((4, 4)), (2, 2), tmp_path / "r.png", n=0
        )


# ------------------------------------------------------------------------------ plot_manifold


def test_plot_manifold_decodes_the_normal_quantile_grid(tmp_path):
    n, calls = 4, []
    quantiles = norm.ppf(np.linspace(0.05, 0.95, n))

    def decode(z):
        calls.append((z.clone(), torch.is_grad_enabled()))
        # Each image's grey level is Phi(z_1), so tile column j shows linspace(0.05, 0.95)[j].
        return torch.special.ndtr(z[:, :1]).expand(-1, 6 * 5)

    rgb = _read(plots.plot_manifold(decode, tmp_path / "m.png", image_shape=(6, 5), n=n))
    assert len(calls) == 1
    z, grad_enabled = calls[0]
    assert not grad_enabled
    assert z.shape == (n * n, 2) and z.dtype == torch.float32 and z.device.type == "cpu"
    expected = [(quantiles[k % n], quantiles[n - 1 - k // n]) for k in range(n * n)]
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-6)
    box = _grid_box(rgb)
    for r in range(n):
        for c in range(n):
            level = _tile_value(rgb, box, n, n, 6, 5, r, c)
            assert level == pytest.approx(norm.cdf(quantiles[c]), abs=ATOL), (r, c)


def test_plot_manifold_of_digits_looks_like_a_grid(tmp_path, digits):
    images = torch.tensor(digits, dtype=torch.float32)

    def decode(z):  # a stand-in decoder: the digit nearest a fixed 2-D embedding
        return images[(torch.special.ndtr(z) * 7.999).long() @ torch.tensor([8, 1])]

    rgb = _read(plots.plot_manifold(decode, tmp_path / "digits.png", image_shape=(8, 8), n=8))
    top, bottom, left, right = _grid_box(rgb)
    assert (bottom - top) / (right - left) == pytest.approx(1.0, rel=0.05)


def test_plot_manifold_checks_the_decoder_output(tmp_path):
    with pytest.raises(ValueError) as error:
        plots.plot_manifold(
            lambda z: torch.zeros(len(z), 63), tmp_path / "m.png", image_shape=(8, 8), n=3
        )
    assert "decode(z) output" in str(error.value) and "(N, 64)" in str(error.value)
    assert "(9, 63)" in str(error.value)
    with pytest.raises(ValueError, match="expected 9 images, one per latent point, got 1"):
        plots.plot_manifold(
            lambda z: torch.zeros(1, 64), tmp_path / "m.png", image_shape=(8, 8), n=3
        )
    with pytest.raises(ValueError, match="n: expected an integer >= 2, got 1"):
        plots.plot_manifold(lambda z: z, tmp_path / "m.png", image_shape=(8, 8), n=1)


# ------------------------------------------------------------------------------ plot_latents


class _SpyPCA:
    """Stands in for sklearn's PCA and remembers what it was fitted on."""

    fitted: list = []

    def __init__(self, n_components):
        self._pca = _PCA(n_components=n_components)
        self.n_components = n_components

    def fit(self, z):
        _SpyPCA.fitted.append((self.n_components, z.shape))
        self._pca.fit(z)
        self.explained_variance_ratio_ = self._pca.explained_variance_ratio_
        return self

    def transform(self, z):
        return self._pca.transform(z)


@pytest.fixture
def spy_pca(monkeypatch):
    import sklearn.decomposition

    _SpyPCA.fitted = []
    monkeypatch.setattr(sklearn.decomposition, "PCA", _SpyPCA)
    return _SpyPCA.fitted


def test_plot_latents_projects_high_dimensional_z_with_pca(tmp_path, spy_pca):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    z = rng.normal(size=(200, 5)) + 6.0 * labels[:, None]
    rgb = _read(
        plots.plot_latents(torch.tensor(z), tmp_path / "pca.png", labels=torch.tensor(labels))
    )
    assert spy_pca == [(2, (200, 5))]
    # Points of both tab10 class colours (drawn at alpha 0.7).
    assert _count(rgb, _on_white(C0, 0.7), 0.05) > 100
    assert _count(rgb, _on_white(C1, 0.7), 0.05) > 100


def test_plot_latents_2d_uses_the_coordinates_themselves(tmp_path, spy_pca):
    rgb = _read(
        plots.plot_latents(np.random.default_rng(0).normal(size=(300, 2)), tmp_path / "two.png")
    )
    assert spy_pca == []
    assert _count(rgb, _on_white(C0, 0.7), 0.05) > 100
    assert _count(rgb, _on_white(C1, 0.7), 0.05) == 0


def test_plot_latents_1d_histograms_per_label(tmp_path):
    z = np.concatenate([np.random.default_rng(0).normal(size=200), [5.0]])
    labels = ["a"] * 100 + ["b"] * 101
    rgb = _read(plots.plot_latents(z, tmp_path / "one.png", labels=labels))
    assert _count(rgb, C0, 0.02) > 100 and _count(rgb, C1, 0.02) > 100


def test_plot_latents_many_classes_get_a_colour_bar(tmp_path, digits):
    rgb = _read(
        plots.plot_latents(digits[:, 20:22], tmp_path / "bar.png", labels=np.arange(len(digits)))
    )
    viridis_top = (0.993, 0.906, 0.144)
    assert _count(rgb, viridis_top, 0.05) > 100  # the colour bar's top end


@pytest.mark.parametrize(
    "z, labels, words",
    [
        (np.zeros((5, 3)), np.zeros(4), ["labels", "(5,)", "(4,)"]),
        (np.zeros((5, 3, 2)), None, ["z", "(N, D)", "(5, 3, 2)"]),
        (np.full((5, 2), np.inf), None, ["z", "finite", "10 NaN or infinite"]),
        (np.zeros((1, 4)), None, ["z", "at least 2 points", "got 1"]),
    ],
)
def test_plot_latents_rejects_bad_input(tmp_path, z, labels, words):
    with pytest.raises(ValueError) as error:
        plots.plot_latents(z, tmp_path / "bad.png", labels=labels)
    for word in words:
        assert word in str(error.value)


# ------------------------------------------------------------------------------ plot_curves


def test_plot_curves_skips_non_finite_values_and_non_numeric_keys(tmp_path):
    history = {
        "train_loss": [5.0, 4.0, math.nan, 3.0, math.inf, 2.0],
        "val_loss": [5.5, None, torch.tensor(4.2)],  # shorter, with a missing epoch
        "best_epoch": 4,
        "stopped": [False, True],
        "note": "converged",
    }
    rgb = _read(plots.plot_curves(history, tmp_path / "curves.png"))
    assert _count(rgb, C0, 0.05) > 200 and _count(rgb, C1, 0.05) > 20
    # Only two series are drawn: no third line colour.
    assert _count(rgb, matplotlib.colors.to_rgb("C2"), 0.05) == 0


def test_plot_curves_all_nan_series_does_not_crash(tmp_path):
    out = plots.plot_curves(
        {"loss": [math.nan, math.nan], "kl": np.array([1.0, 0.5])}, tmp_path / "nan.png"
    )
    _read(out)


@pytest.mark.parametrize(
    "history, words",
    [
        ({}, ["history", "non-empty list of numbers", "[]"]),
        ({"loss": [], "best": 3, "name": ["a"]}, ["history", "['loss', 'best', 'name']"]),
        ([1.0, 2.0], ["history", "dict", "list"]),
    ],
)
def test_plot_curves_rejects_histories_without_series(tmp_path, history, words):
    with pytest.raises(ValueError) as error:
        plots.plot_curves(history, tmp_path / "bad.png")
    for word in words:
        assert word in str(error.value)


# ------------------------------------------------------------------------------ devices


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_and_devices(tmp_path):
    seen = []

    def decode(z):
        seen.append(z.device.type)
        return torch.sigmoid(z @ torch.ones(2, 16, device=z.device))

    x = torch.rand(8, 16, device="cuda", requires_grad=True)
    _read(plots.image_grid(x, (4, 4), tmp_path / "g.png"))
    _read(
        plots.plot_samples(
            x.to(torch.bfloat16),
            tmp_path / "s.png",
            image_shape=(4, 4),
            binarized=torch.bernoulli(x.detach()),
        )
    )
    _read(plots.plot_reconstructions(x, x * 0.5, (4, 4), tmp_path / "r.png"))
    _read(plots.plot_manifold(decode, tmp_path / "m.png", image_shape=(4, 4), n=5, device="cuda"))
    _read(
        plots.plot_latents(
            torch.randn(50, 3, device="cuda"),
            tmp_path / "l.png",
            labels=torch.arange(50, device="cuda") % 3,
        )
    )
    _read(plots.plot_curves({"loss": torch.tensor([3.0, 2.0], device="cuda")}, tmp_path / "c.png"))
    assert seen == ["cuda"]

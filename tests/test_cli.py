"""The ``pyromix`` command line: files written, numbers finite, bad input refused in one line."""

import json
import math
import shutil
import subprocess

import matplotlib.image
import numpy as np
import pytest

from pyromix.cli import main

FAST = ["--epochs", "3", "--samples", "50", "--hidden", "32", "--quiet"]
REQUIRED = [
    "model",
    "dataset",
    "seed",
    "epochs",
    "train_seconds",
    "test_elbo",
    "test_log_likelihood",
    "is_samples",
    "pareto_k_max",
    "bits_per_dim",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["fit", "vae", "--data", "digits", "--out", str(out), *FAST]) == 0
    return out


def read_png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.std() > 0
    return image


def test_fit_writes_the_run_files_with_finite_numbers(run_dir):
    for name in ("checkpoint.pt", "metrics.json", "samples.png", "curves.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in REQUIRED:
        assert key in metrics, key
    assert (metrics["model"], metrics["dataset"], metrics["epochs"], metrics["is_samples"]) == (
        "vae",
        "digits",
        3,
        50,
    )
    for key in (
        "train_seconds",
        "test_elbo",
        "test_log_likelihood",
        "pareto_k_max",
        "bits_per_dim",
    ):
        assert math.isfinite(metrics[key]), key
    assert metrics["test_elbo"] <= metrics["test_log_likelihood"] < 0
    assert metrics["bits_per_dim"] == pytest.approx(
        -metrics["test_log_likelihood"] / (64 * math.log(2))
    )
    read_png(run_dir / "samples.png"), read_png(run_dir / "curves.png")


def test_evaluate_reproduces_and_updates_the_metrics(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    before = json.loads((copy / "metrics.json").read_text())
    assert main(["evaluate", str(copy), "--samples", "50"]) == 0
    after = json.loads((copy / "metrics.json").read_text())
    assert after["test_log_likelihood"] == pytest.approx(before["test_log_likelihood"], rel=1e-5)
    capsys.readouterr()
    assert main(["evaluate", str(copy), "--samples", "20"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((copy / "metrics.json").read_text())
    assert printed["is_samples"] == 20 and printed["pareto_k_max"] is None  # not estimable from 20


def test_sample_writes_an_image(run_dir, tmp_path):
    assert main(["sample", str(run_dir), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    read_png(tmp_path / "s.png")


def test_resume_extends_a_run_and_existing_runs_are_protected(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert main(["fit", "vae", "--out", str(copy), *FAST]) == 2
    assert "already holds a run; pass --resume or --force" in capsys.readouterr().err
    assert (
        main(
            [
                "fit",
                "vae",
                "--out",
                str(copy),
                "--resume",
                "--epochs",
                "5",
                "--samples",
                "50",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((copy / "metrics.json").read_text())["epochs"] == 5


def test_fit_on_user_data_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, (60, 3)), rng.normal(2, 0.5, (60, 3))])
    np.save(tmp_path / "points.npy", x)
    np.save(tmp_path / "labels.npy", np.repeat([0, 1], 60))
    out = tmp_path / "user"
    assert (
        main(
            [
                "fit",
                "vae",
                "--data",
                str(tmp_path / "points.npy"),
                "--labels",
                str(tmp_path / "labels.npy"),
                "--latent-dim",
                "2",
                "--out",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["likelihood"] == "gaussian"
        and "bits_per_dim" not in metrics
        and "gmm_acc" in metrics
    )
    assert main(["evaluate", str(out), "--samples", "20"]) == 0  # the run reloads its own data


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "nope"], "unknown recipe 'nope'; choose from vae, iwae, "),
        (["fit", "vae", "--data", "nosuch"], "unknown dataset 'nosuch'; expected one of digits"),
        (["fit", "vae", "--data", "/no/such/file.npy"], "not found"),
        (["fit", "vae", "--epochs", "0"], "--epochs: expected an integer >= 1, got '0'"),
        (["fit", "vae", "--lr", "abc"], "--lr: expected a number in (0, 3.4e+38], got 'abc'"),
        (["fit", "vae", "--hidden", "64,x"], "--hidden: expected a non-empty list of integers >= 1, got '64,x'"),
        (["fit", "vae", "--likelihood", "poisson"], "--likelihood: expected one of 'auto', "),
        (["fit", "vae", "--device", "tpu"], "device: expected 'cpu' or 'cuda"),
        (["fit", "vae", "--data", "mnist", "--data-dir", "/no/such/dir"], "looked in"),
        (["fit", "iwae", "--warmup", "5"], "no KL term"),
        (["evaluate", "/no/such/run"], "no such file"),
        (["sample", "/no/such/run", "--out", "x.png"], "no such file"),
        (["sample", "/no/such/run"], "--out"),
        (
                ["fit", "cpvae", "--estimator", "reinforce"],
                "--estimator: expected one of 'gumbel', 'enum', got 'reinforce'",
            ),
        (["sample", "/no/such/run", "--out", "x.png", "--categories", "x"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    argv, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_nan_data_file(tmp_path, capsys):
    x = np.ones((10, 2))
    x[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    assert (
        main(["fit", "vae", "--data", str(tmp_path / "nan.npy"), "--out", str(tmp_path / "o")]) == 2
    )
    assert "NaN" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_installed_entry_point_lists_models_and_datasets():
    exe = shutil.which("pyromix")
    assert exe is not None, "the pyromix console script is not installed"
    out = subprocess.run([exe, "list"], capture_output=True, text=True, check=True).stdout
    for name in ("vae", "iwae", "digits", "mnist", "fashion-mnist", "onehot", "mixture1d"):
        assert f"  {name} " in out


@pytest.mark.parametrize("model", ["gmvae", "nvisa", "nvil", "gmvae-meanfield", "vade"])
def test_fit_clustering_recipes_report_clustering_metrics(model, tmp_path):
    out = tmp_path / model
    argv = [
        "fit",
        model,
        "--out",
        str(out),
        "--clusters",
        "4",
        "--pretrain-epochs",
        "1",
        "--limit",
        "200",
        *FAST,
    ]
    if model == "nvisa":
        argv += ["--particles", "3"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clusters"] == 4 and 1 <= metrics["clusters_used"] <= 4
    for key in ("acc", "nmi", "ari", "gmm_acc", "gmm_nmi", "gmm_ari"):
        assert -1 <= metrics[key] <= 1, key
    assert math.isfinite(metrics["test_log_likelihood"])
    image = read_png(out / "samples.png")
    assert (
        image.shape[0] < image.shape[1] / 2
    )  # four labelled rows of 16, not the square 8 x 8 grid


def test_mixture_flags_are_refused_for_models_without_clusters(tmp_path, capsys):
    assert main(["fit", "vae", "--clusters", "3", "--out", str(tmp_path / "v")]) == 2
    assert "unknown argument(s) ['clusters']" in capsys.readouterr().err


@pytest.mark.parametrize("model, extra", [("mog", []), ("vampprior", ["--pseudo-init", "data"])])
def test_fit_learned_prior_recipes(model, extra, tmp_path):
    out = tmp_path / model
    argv = ["fit", model, "--out", str(out), "--components", "5", "--limit", "200", *FAST, *extra]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_elbo"] <= metrics["test_log_likelihood"] < 0
    assert main(["sample", str(out), "--n", "9", "--out", str(tmp_path / "s.png")]) == 0


def test_sample_one_component(tmp_path, capsys):
    out = tmp_path / "mog"
    assert (
        main(["fit", "mog", "--out", str(out), "--components", "3", "--limit", "100", *FAST]) == 0
    )
    assert main(["sample", str(out), "--component", "1", "--out", str(tmp_path / "c.png")]) == 0
    read_png(tmp_path / "c.png")
    assert main(["sample", str(out), "--component", "3", "--out", str(tmp_path / "d.png")]) == 2
    assert "0 <= component < 3" in capsys.readouterr().err


@pytest.mark.parametrize("estimator", ["gumbel", "enum"])
def test_fit_cpvae_reports_clusters_and_samples_from_q_c_or_the_prior(estimator, tmp_path):
    out = tmp_path / estimator
    argv = ["fit", "cpvae", "--out", str(out), "--clusters", "4", "--limit", "200"]
    assert main([*argv, "--estimator", estimator, "--latent-dim", "4", *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clusters"] == 4 and 1 <= metrics["clusters_used"] <= 4
    assert -1 <= metrics["acc"] <= 1 and metrics["test_elbo"] <= metrics["test_log_likelihood"]
    image = read_png(out / "samples.png")
    assert image.shape[0] < image.shape[1] / 2  # one labelled row per category
    read_png(out / "reconstructions.png")  # the decoder got [z, c]
    for categories in ("posterior", "prior"):
        png = tmp_path / f"{categories}.png"
        assert main(["sample", str(out), "--categories", categories, "--out", str(png)]) == 0
        read_png(png)


def test_scores_count_only_the_test_points_with_known_labels(tmp_path):
    # A label file may mark unknown labels with -1: they are not a class of their own.
    from pyromix.evaluate import clustering_scores
    from pyromix.runs import cluster_probabilities, evaluate_points, train_recipe

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, (90, 3)), rng.normal(2, 0.5, (90, 3))])
    y = np.repeat([0, 1], 90)
    y[::3] = -1
    np.save(tmp_path / "points.npy", x)
    np.save(tmp_path / "labels.npy", y)
    run = train_recipe(
        "gmvae",
        str(tmp_path / "points.npy"),
        labels=str(tmp_path / "labels.npy"),
        epochs=2,
        pretrain_epochs=1,
        latent_dim=2,
        hidden=[16],
        progress=False,
    )
    metrics, _ = evaluate_points(run, num_samples=10)
    test = run.dataset.test
    known = test.y >= 0
    assert 0 < metrics["test_points_labelled"] == int(known.sum()) < len(test)
    assigned = cluster_probabilities(run, test.x).argmax(-1)
    expected = clustering_scores(test.y[known].numpy(), assigned[known].numpy())
    for key in ("acc", "nmi", "ari"):
        assert metrics[key] == pytest.approx(expected[key]), key
    assert "gmm_acc" in metrics

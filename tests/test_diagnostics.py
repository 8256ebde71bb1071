"""Collapse diagnostics on constructed cases: exact shares, effective counts and warnings."""

import json
import math

import numpy as np
import pytest
import torch

from pyromix.cli import main
from pyromix.diagnostics import (
    active_units,
    cluster_usage,
    collapse_warning,
    collapse_warnings,
    plot_diagnostics,
)
from pyromix.runs import evaluate_run, train_recipe, write_report

TINY = dict(hidden=[16], latent_dim=3, epochs=1, limit=60, progress=False)


@pytest.fixture(scope="module")
def gmvae_run():
    return train_recipe("gmvae", "digits", pretrain_epochs=1, **TINY)


def test_cluster_usage_matches_a_direct_count():
    assigned = torch.tensor([0, 0, 0, 1, 2, 2])
    usage = cluster_usage(assigned, 4)
    shares = np.array([3, 1, 2, 0]) / 6
    nonzero = shares[shares > 0]
    assert usage["cluster_shares"] == pytest.approx(shares.tolist())
    entropy = -(nonzero * np.log(nonzero)).sum()
    assert usage["effective_clusters"] == pytest.approx(math.exp(entropy))
    assert (usage["smallest_cluster"], usage["largest_cluster"]) == (0.0, 0.5)
    with pytest.raises(ValueError, match=r"assigned: expected cluster indices in \[0, 4\)"):
        cluster_usage(torch.tensor([0, 4]), 4)


def test_one_cluster_guide_reports_one_effective_cluster_and_the_warning(gmvae_run, monkeypatch):
    k = gmvae_run.args["clusters"]
    monkeypatch.setattr(
        gmvae_run.guide,
        "cluster_probs",
        lambda x: torch.nn.functional.one_hot(x.new_zeros(len(x)).long(), k).float(),
    )
    metrics = evaluate_run(gmvae_run, num_samples=2)
    assert metrics["effective_clusters"] == 1.0 and metrics["largest_cluster"] == 1.0
    assert metrics["clusters_used"] == 1
    assert any(w.startswith("collapsed mixture") for w in metrics["warnings"])
    assert "1.0 effective clusters of 10" in collapse_warning(metrics)


def test_balanced_guide_reports_k_effective_clusters_and_no_warning(gmvae_run, monkeypatch):
    k = gmvae_run.args["clusters"]
    n = len(gmvae_run.dataset.test)
    monkeypatch.setattr(
        gmvae_run.guide,
        "cluster_probs",
        lambda x: torch.nn.functional.one_hot(torch.arange(len(x)) % k, k).float(),
    )
    metrics = evaluate_run(gmvae_run, num_samples=2)
    counts = np.bincount(np.arange(n) % k, minlength=k) / n
    entropy = -(counts * np.log(counts)).sum()
    assert metrics["effective_clusters"] == pytest.approx(math.exp(entropy))
    assert metrics["effective_clusters"] > k / 2
    assert not any(w.startswith("collapsed mixture") for w in metrics["warnings"])


def test_posterior_equal_to_the_prior_has_no_active_unit(tmp_path):
    run = train_recipe("vae", "digits", **TINY)
    head = run.guide.encoder
    with torch.no_grad():  # q(z | x) = N(0, I) = p(z) for every x
        for layer in (head.loc, head.raw_scale):
            layer.weight.zero_()
            layer.bias.zero_()
        target = 1.0 - head.std_min  # softplus(raw) + std_min = 1
        head.raw_scale.bias.fill_(math.log(math.expm1(target)))
    x = run.dataset.test.x
    posterior = run.guide.encoder(x)
    assert torch.allclose(posterior.mean, torch.zeros_like(posterior.mean))
    assert torch.allclose(posterior.base_dist.scale, torch.ones_like(posterior.mean))
    metrics = evaluate_run(run, num_samples=2)
    assert metrics["active_units"] == 0 and metrics["latent_units"] == 3
    assert any(w.startswith("posterior collapse") for w in metrics["warnings"])
    written = write_report(run, metrics, tmp_path)
    assert tmp_path / "diagnostics.png" in written


def test_active_units_threshold_is_burdas_variance_of_the_posterior_mean():
    z = torch.stack([torch.tensor([0.0, 0.18] * 5), torch.tensor([0.0, 0.22] * 5)], -1)
    found = active_units(z)  # variances (0.18 / 2)^2 = 0.0081 and 0.0121, across 0.01
    assert found["unit_activity"] == pytest.approx([0.0081, 0.0121])
    assert found["active_units"] == 1


def test_mode_collapse_is_named_and_full_coverage_is_not():
    collapsed = {"class_histogram": [1.0] + [0.0] * 9, "class_entropy": 0.0, "classes_hit_1pct": 1}
    assert collapse_warnings(collapsed)[0].startswith("mode collapse")
    spread = {"class_histogram": [0.1] * 10, "class_entropy": math.log(10), "classes_hit_1pct": 10}
    assert collapse_warnings(spread) == [] and collapse_warning(spread) == ""


def test_plot_diagnostics_draws_what_the_metrics_hold(tmp_path):
    assert plot_diagnostics({}, tmp_path / "none.png") is None
    metrics = {**cluster_usage(torch.tensor([0, 1, 1]), 3), **active_units(torch.eye(3))}
    assert plot_diagnostics(metrics, tmp_path / "d.png").stat().st_size > 0


def test_plot_diagnostics_draws_into_a_users_axes_and_returns_the_figure():
    from matplotlib.figure import Figure

    metrics = {**cluster_usage(torch.tensor([0, 1, 1]), 3), **active_units(torch.eye(3))}
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert plot_diagnostics(metrics, ax=list(axes)) is fig
    heights = [bar.get_height() for bar in axes[0].patches]
    assert heights == pytest.approx(metrics["cluster_shares"])
    assert [bar.get_height() for bar in axes[1].patches] == pytest.approx(metrics["unit_activity"])
    assert isinstance(plot_diagnostics(metrics), Figure)  # no path: a new figure, returned
    with pytest.raises(ValueError, match="ax: expected a sequence of 2 matplotlib Axes"):
        plot_diagnostics(metrics, ax=axes[0])


def test_cli_fit_and_evaluate_print_the_warning_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    args = ["--hidden", "16", "--latent-dim", "3", "--epochs", "1", "--limit", "60"]
    assert main(["fit", "vae", "--out", str(out), "--quiet", "--samples", "2", *args]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["warnings"] == [] and metrics["active_units"] >= 1
    assert "warning" not in capsys.readouterr().err
    assert (out / "diagnostics.png").exists()
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    for key in ("encoder.loc.weight", "encoder.loc.bias"):  # E_q[z | x] = 0 for every x
        saved["best"]["guide"][key].zero_()
    torch.save(saved, out / "checkpoint.pt")
    assert main(["evaluate", str(out), "--samples", "2"]) == 0
    printed = capsys.readouterr().err
    assert "pyromix: warning: this run has failed: posterior collapse" in printed
    assert json.loads((out / "metrics.json").read_text())["active_units"] == 0

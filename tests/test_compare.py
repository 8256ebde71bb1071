"""Model comparison by held-out evidence: paired standard errors against a direct computation,
agreement with ``evaluate``, and refusal of runs that do not share a test split."""

import json
import math

import numpy as np
import pytest
import torch

from pyromix.cli import main
from pyromix.compare import compare_points
from pyromix.evaluate import LogLikelihood
from pyromix.runs import evaluate_run, load_run

TINY = ["--epochs", "1", "--hidden", "8", "--samples", "30", "--quiet", "--limit", "60"]


def result(log_px, k=0.5):
    log_px = torch.as_tensor(log_px, dtype=torch.float32)
    return LogLikelihood(log_px, log_px - 1.0, torch.full(log_px.shape, k), 100)


def test_paired_standard_error_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    hard = rng.normal(-20.0, 3.0, size=40)  # per-point difficulty that all models share
    models = {
        "a": hard + rng.normal(0.0, 0.2, 40),
        "b": hard + 0.5 + rng.normal(0.0, 0.2, 40),
        "c": hard - 1.0 + rng.normal(0.0, 1.0, 40),
    }
    models = {name: v.astype(np.float32).astype(np.float64) for name, v in models.items()}
    rows = compare_points(
        list(models), [result(v, k) for v, k in zip(models.values(), [0.5, 0.9, 0.5])]
    )
    assert [row["name"] for row in rows] == ["b", "a", "c"]
    for row in rows:
        d = models[row["name"]] - models["b"]
        assert row["diff_to_best"] == pytest.approx(d.mean(), rel=1e-9, abs=1e-12)
        assert row["diff_se"] == pytest.approx(d.std(ddof=1) / math.sqrt(40), rel=1e-9, abs=1e-12)
        assert row["log_likelihood"] == pytest.approx(models[row["name"]].mean(), rel=1e-6)
        assert row["elbo"] == pytest.approx(row["log_likelihood"] - 1.0, rel=1e-6)
    assert rows[0]["diff_to_best"] == rows[0]["diff_se"] == 0.0
    assert [row["pareto_k_share_above_0.7"] for row in rows] == [1.0, 0.0, 0.0]
    # Pairing removes the shared per-point spread: far below the unpaired error.
    unpaired = math.sqrt((models["a"].var(ddof=1) + models["b"].var(ddof=1)) / 40)
    assert rows[1]["diff_se"] < unpaired / 5


def test_compare_points_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="expected equally many"):
        compare_points(["a"], [result([1.0]), result([2.0])])
    with pytest.raises(ValueError, match="one shape"):
        compare_points(["a", "b"], [result([1.0, 2.0]), result([2.0])])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    fits = {
        "vae": ["vae", "--data", "onehot"],
        "iop": ["iop", "--data", "onehot", "--vae-steps", "1", "--disc-steps", "3"],
        "vae-split1": ["vae", "--data", "onehot", "--split-seed", "1"],
        "vae-digits": ["vae", "--data", "digits"],
    }
    for name, args in fits.items():
        assert main(["fit", *args, "--out", str(root / name), *TINY]) == 0
    return root


def test_iop_run_metrics_are_marked_approximate(runs):
    iop = json.loads((runs / "iop" / "metrics.json").read_text())
    vae = json.loads((runs / "vae" / "metrics.json").read_text())
    assert iop["model"] == "iop" and iop["prior_is_approximate"] is True
    assert math.isfinite(iop["prior_log_normalizer"]) and math.isfinite(iop["test_log_likelihood"])
    normalized = iop["test_log_likelihood"] - iop["prior_log_normalizer"]
    assert iop["test_log_likelihood_normalized"] == pytest.approx(normalized)
    assert vae["prior_is_approximate"] is False and "prior_log_normalizer" not in vae


def test_compare_ranks_runs_as_evaluate_scores_them(runs, tmp_path, capsys):
    out = tmp_path / "table.json"
    capsys.readouterr()
    assert (
        main(
            ["compare", str(runs / "vae"), str(runs / "iop"), "--samples", "30", "--json", str(out)]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "diff to best" in table and "≈" in table  # the implicit prior's estimate is marked
    rows = json.loads(out.read_text())["rows"]
    assert sorted(row["model"] for row in rows) == ["iop", "vae"]
    assert rows[0]["log_likelihood"] >= rows[1]["log_likelihood"] and rows[0]["diff_to_best"] == 0
    for row in rows:
        expected = evaluate_run(load_run(row["name"]), 30)["test_log_likelihood"]
        assert row["log_likelihood"] == pytest.approx(expected, rel=1e-5)
        assert row["prior_is_approximate"] == (row["model"] == "iop") and row["test_points"] == 60
        assert (row["prior_log_normalizer"] is None) == (row["model"] == "vae")
    gap = rows[1]["log_likelihood"] - rows[0]["log_likelihood"]
    assert rows[1]["diff_to_best"] == pytest.approx(gap, abs=1e-5)
    assert rows[1]["diff_se"] > 0


@pytest.mark.parametrize(
    "other, message",
    [
        ("vae-split1", "differ in split_seed"),
        ("vae-digits", "differ in dataset"),
        ("missing", "has no checkpoint.pt"),
    ],
)
def test_compare_refuses_runs_without_a_common_test_split(runs, other, message, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs / "vae"), str(runs / other), "--samples", "30"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    if other != "missing":
        assert str(runs / "vae") in error and str(runs / other) in error


def test_compare_needs_two_runs_and_fit_checks_the_alternation(runs, capsys):
    assert main(["compare", str(runs / "vae")]) == 2
    assert "expected two or more run directories, got 1" in capsys.readouterr().err
    assert (
        main(
            [
                "fit",
                "iop",
                "--data",
                "onehot",
                "--disc-steps",
                "2",
                "--vae-steps",
                "2",
                "--out",
                str(runs / "bad"),
                *TINY,
            ]
        )
        == 2
    )
    assert "J2 > J1" in capsys.readouterr().err
    assert (
        main(
            [
                "fit",
                "vae",
                "--data",
                "onehot",
                "--disc-steps",
                "3",
                "--out",
                str(runs / "bad"),
                *TINY,
            ]
        )
        == 2
    )
    assert "unknown argument(s) ['disc_steps']" in capsys.readouterr().err

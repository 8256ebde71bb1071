"""Held-out log p(x) through arviz: az.compare agrees with pyromix's paired comparison."""

import math

import pytest
import torch

from pyromix.compare import compare_points
from pyromix.elpd import arviz_compare, elpd_data
from pyromix.evaluate import LogLikelihood


def results(n=40):
    """Three models' per-point log p(x) on the same points, correlated as real models are."""
    base = -50 + 5 * torch.randn(n)
    k = torch.rand(n)
    return [LogLikelihood(base + shift + torch.randn(n), base, k, 100) for shift in (0, -1, 0.5)]


def test_az_compare_reproduces_compare_points_difference_and_paired_se():
    names, res = ["a", "b", "c"], results()
    n = len(res[0].log_px)
    rows = {row["name"]: row for row in compare_points(names, res)}
    table = arviz_compare(names, res)
    assert list(table.index) == sorted(names, key=lambda m: -rows[m]["log_likelihood"])
    for name in names:
        row = table.loc[name]
        assert row["elpd_loo"] == pytest.approx(n * rows[name]["log_likelihood"], rel=1e-6)
        assert row["elpd_diff"] == pytest.approx(-n * rows[name]["diff_to_best"], abs=1e-9)
        # arviz's dse uses the population variance, pyromix's SE the sample variance.
        paired = n * rows[name]["diff_se"] * math.sqrt((n - 1) / n)
        assert row["dse"] == pytest.approx(paired, rel=1e-6)
    assert table["weight"].sum() == pytest.approx(1.0)


def test_elpd_data_holds_the_pointwise_values_and_pareto_warning():
    (a, *_) = results(5)
    e = elpd_data(a)
    assert e["loo_i"].values.tolist() == pytest.approx(a.log_px.double().tolist())
    assert e["se"] == pytest.approx(math.sqrt(5) * a.log_px.double().std(unbiased=False).item())
    assert e["warning"] == bool((a.pareto_k > 0.7).any()) and e["n_samples"] == 100
    with pytest.raises(ValueError, match=r"expected equally many \(>= 2\)"):
        arviz_compare(["a"], [a])
    with pytest.raises(ValueError, match="same points"):
        arviz_compare(["a", "b"], [a, results(6)[0]])

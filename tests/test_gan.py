"""The GAN: its losses written out by hand, its contract, two modes of a 1-D mixture, and what
evaluation and comparison say of a model without a likelihood."""

import math

import pyro
import pytest
import torch
from pyro import poutine

from pyromix.cli import main
from pyromix.compare import compare_runs
from pyromix.evaluate import mode_coverage
from pyromix.infer import NonSaturatingGAN, density_ratio_loss
from pyromix.recipes import get_recipe
from pyromix.runs import evaluate_run, load_run, prepare_recipe, train_recipe

TINY = {"hidden": [16], "disc_hidden": [16], "latent_dim": 3, "limit": 40}


@pytest.fixture()
def gan():
    run = prepare_recipe("gan", "digits", **TINY)
    x, _ = next(run.dataset.train_batches(8, torch.Generator().manual_seed(0)))
    return run, x


def test_discriminator_loss_is_the_minimax_value_written_by_hand(gan):
    run, x = gan
    T = run.model.discriminator
    fake = run.model.generate(8)
    D = lambda v: torch.sigmoid(T(v))  # noqa: E731
    # -V(D, G) of Goodfellow et al. (2014), eq. 1, as sample means: what D minimises.
    by_hand = -(torch.log(D(x)).mean() + torch.log(1 - D(fake)).mean())
    loss = density_ratio_loss(T, x, fake)
    assert float(loss.detach()) == pytest.approx(float(by_hand.detach()), rel=1e-5)


@pytest.mark.parametrize("saturating", [False, True])
def test_generator_loss_is_the_non_saturating_or_minimax_term_by_hand(gan, saturating):
    run, x = gan
    model = run.model.eval()  # G's dropout off: G(z) is then a function of z alone
    pyro.set_rng_seed(5)
    loss = NonSaturatingGAN(saturating=saturating).loss(model, run.guide, x)
    pyro.set_rng_seed(5)  # the same z
    z = poutine.trace(model).get_trace(x).nodes["z"]["value"]
    with torch.no_grad():
        D = torch.sigmoid(model.discriminator(model.generator(z)))
    by_hand = torch.log(1 - D).sum() if saturating else -torch.log(D).sum()
    assert loss == pytest.approx(float(by_hand), rel=1e-5)


def test_generator_steps_move_g_and_never_d(gan):
    run, x = gan
    hooks = get_recipe("gan").step_hooks(run.model, run.guide, run.dataset, run.args)
    NonSaturatingGAN().loss_and_grads(run.model, run.guide, x)
    trained_by_hooks = {id(p) for hook in hooks for p in hook.parameters()}
    assert trained_by_hooks == {id(p) for p in run.model.discriminator.parameters()}
    for name, p in run.model.named_parameters():
        if id(p) in trained_by_hooks:
            assert p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_gan_trains_reloads_and_says_it_has_no_likelihood(tmp_path, capsys):
    out = tmp_path / "gan"
    assert main(["fit", "gan", "--out", str(out), "--epochs", "2", "--limit", "60",
                 "--hidden", "16", "--latent-dim", "3", "--quiet"]) == 0  # fmt: skip
    for name in ("samples.png", "stages.png", "adversarial_curves.png", "metrics.json"):
        assert (out / name).is_file(), name
    run = load_run(out)
    steps = run.hooks[0]
    assert sorted(steps.stages) == [1, 2] and len(steps.curves["discriminator_accuracy"]) == 2
    assert all(0 <= a <= 1 for a in steps.curves["discriminator_accuracy"])
    metrics = evaluate_run(run)
    assert metrics["test_log_likelihood"] is None and "no log-likelihood" in metrics["note"]
    assert 1 <= metrics["classes_hit"] <= 10
    assert 0 <= metrics["class_entropy"] <= math.log(10) + 1e-9
    assert metrics["classifier_test_accuracy"] > 0.5  # 60 training digits
    capsys.readouterr()
    assert main(["evaluate", str(out), "--samples", "30"]) == 0
    assert "has no log-likelihood" in capsys.readouterr().out
    train_recipe("vae", "digits", out=tmp_path / "vae", hidden=[16], epochs=1, limit=60,
                 progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="has no likelihood to rank by"):
        compare_runs([tmp_path / "vae", out], 30)
    assert main(["compare", str(tmp_path / "vae"), str(out), "--samples", "30"]) == 2


def test_mode_coverage_detects_a_collapse():
    classify = lambda x: x[:, 0].long().numpy()  # noqa: E731 - the label is the first feature
    spread = mode_coverage(torch.arange(10.0).repeat(10)[:, None], classify, 10)
    collapsed = mode_coverage(torch.full((100, 1), 3.0), classify, 10)
    assert spread["classes_hit"] == 10
    assert spread["class_entropy"] == pytest.approx(math.log(10))
    assert collapsed["classes_hit"] == 1 and collapsed["class_entropy"] == 0.0


def test_bad_gan_settings_are_refused_before_training():
    with pytest.raises(ValueError, match="disc_dropout: expected a probability"):
        prepare_recipe("gan", "digits", limit=40, disc_dropout=1.5)
    with pytest.raises(ValueError, match="likelihood: expected 'none', got 'flow'"):
        prepare_recipe("gan", "digits", limit=40, likelihood="flow")


def test_gan_on_the_two_mode_mixture_puts_mass_on_both_modes():
    """Seed 001's 1-D mixture 0.5 N(0.3, 0.05^2) + 0.5 N(0.7, 0.05^2). A collapsed generator
    would put (nearly) all its draws within 0.1 of one mode and almost none near the other:
    the per-mode shares below would read ~1 and ~0, failing the first assertion."""
    run = train_recipe(
        "gan", "mixture1d", seed=0, lr=1e-3, epochs=15, latent_dim=2, hidden=[32, 32],
        disc_hidden=[32, 32], limit=4000, sample_epochs=[1], progress=False,
    )  # fmt: skip
    x = run.model.generate(4000).squeeze(-1)
    shares = [float(((x - mode).abs() < 0.1).float().mean()) for mode in (0.3, 0.7)]
    assert min(shares) > 0.15  # both modes hold mass (measured 0.47 and 0.23)
    assert sum(shares) > 0.55  # and most of it sits on the modes (uniform on [0, 1]: 0.4)

"""Captured steps (pyromix.capture): the same losses, gradients and draws as eager steps."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.nn import PyroModule
from torch import nn

from pyromix.capture import StepCapture
from pyromix.data import Dataset, Split
from pyromix.infer.scale import LatentScaleMessenger
from pyromix.recipes import RECIPES, get_recipe
from pyromix.runs import prepare_recipe
from pyromix.train import data_size, fit



def _grads(params):
    return [None if p.grad is None else p.grad.clone() for p in params]


def _eager_then_captured(step, x, seed):
    """The eager step, then ``step``, from the same seed: ``(loss, grads)`` of each, as
    ``(captured, eager)``."""
    for p in step.parameters:
        p.grad = None
    pyro.set_rng_seed(seed)
    with pyro.validation_enabled(False):
        eager = step.objective.loss_and_grads(step.model, step.guide, x), _grads(step.parameters)
    for p in step.parameters:
        p.grad = None
    pyro.set_rng_seed(seed)
    return (step(x), _grads(step.parameters)), eager


def _assert_same(loss, grads, eager_loss, eager_grads, what, rtol=1e-6):
    """Float tolerance: the same operations, summed in the same order on every model here but
    the untrained flow, whose gradients reach 1e34 and differ in the last few bits; ``iwae``'s
    graph computes RenyiELBO's gradient as VIMCO does (softmax weights by autograd), the same
    math arranged otherwise."""
    assert loss == pytest.approx(eager_loss, rel=1e-6), what
    for i, (g, e) in enumerate(zip(grads, eager_grads)):
        assert (g is None) == (e is None), f"{what}: parameter {i}"
        if e is not None:
            error = ((g - e).abs().max() / e.abs().max().clamp_min(1e-12)).item()
            assert error <= rtol, f"{what}: parameter {i} differs by {error:.2e} (relative)"


@pytest.mark.parametrize("name", list(RECIPES))
def test_captured_steps_equal_eager_steps_on_the_same_draws(name):
    run = prepare_recipe(name, "digits", hidden=[16], limit=60, particles=3)
    batches = run.dataset.train_batches(10, torch.Generator().manual_seed(0))
    xs = [next(batches)[0] for _ in range(4)]
    objective = get_recipe(name).objective(run.args)
    weighting = LatentScaleMessenger(0.5)  # mid warm-up, as fit runs it
    model, guide = weighting(run.model), weighting(run.guide)
    step = StepCapture(objective, model, guide, modules=(run.model, run.guide), state=(weighting,))
    step.after = 0  # capture on the first step, check on the second
    optimizer = torch.optim.Adam(step.parameters, lr=1e-2)
    for i, x in enumerate(xs):
        (loss, grads), (eager_loss, eager) = _eager_then_captured(step, x, i)
        rtol = 1e-5 if name == "iwae" else 1e-6
        _assert_same(loss, grads, eager_loss, eager, f"{name}, step {i}", rtol)
        assert math.isfinite(loss)
        optimizer.step()  # the graph must read the updated parameters, not copies
    assert step.off == "" and step.graphs == 1, step.off


def test_a_changed_setting_is_not_replayed_from_a_stale_graph():
    # The KL weight and a std floor are Python numbers the graph bakes in: a step with new
    # values must run the programs again (eager, then a graph of its own).
    run = prepare_recipe("gmvae", "digits", hidden=[16], limit=40)
    x, _ = next(run.dataset.train_batches(10, torch.Generator().manual_seed(0)))
    objective = get_recipe("gmvae").objective(run.args)
    weighting = LatentScaleMessenger(1.0)
    model, guide = weighting(run.model), weighting(run.guide)
    step = StepCapture(
        objective, model, guide, modules=(run.model, run.guide), state=(weighting,), budget=1e9
    )
    step.after = 0
    for seed in range(3):
        _eager_then_captured(step, x, seed)
    assert step.graphs == 1
    weighting.weight = 0.25
    run.guide.std_min = 0.5
    (loss, grads), (eager_loss, eager_grads) = _eager_then_captured(step, x, 3)
    _assert_same(loss, grads, eager_loss, eager_grads, "after the settings changed")
    for seed in range(4, 7):
        (loss, grads), (eager_loss, eager_grads) = _eager_then_captured(step, x, seed)
        _assert_same(loss, grads, eager_loss, eager_grads, f"new settings, seed {seed}")
    assert step.graphs == 2 and step.off == ""


class _Branching(PyroModule):
    """A model whose structure depends on a data value, which no key can see."""

    def __init__(self):
        super().__init__()
        self.decoder = nn.Linear(2, 4)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            scale = 2.0 if float(x.mean()) > 0.5 else 1.0
            pyro.sample("x", dist.Normal(self.decoder(z), scale).to_event(1), obs=x)


class _Guide(PyroModule):
    def __init__(self):
        super().__init__()
        self.loc = nn.Linear(4, 2)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(self.loc(x), 1.0).to_event(1))


def test_a_program_that_branches_on_data_values_falls_back_to_eager():
    model, guide = _Branching(), _Guide()
    step = StepCapture(Trace_ELBO(), model, guide, after=1)
    ones, zeros = torch.ones(3, 4), torch.zeros(3, 4)
    losses = []
    for x in (zeros, zeros, ones, zeros, ones):  # captured on zeros, checked on ones
        pyro.set_rng_seed(0)
        losses.append(step(x))
        pyro.set_rng_seed(0)
        with pyro.validation_enabled(False):
            assert losses[-1] == pytest.approx(Trace_ELBO().loss(model, guide, x), rel=1e-6)
    assert step.off.startswith("a captured graph disagreed") and step.graphs == 0


class _Subsampled(PyroModule):
    """A global latent with the data plate scaled by N / B (data_size), as in Pyro's
    subsampling: captured steps must keep fit's per-point bookkeeping."""

    def __init__(self):
        super().__init__()
        self.decoder = nn.Linear(2, 4)

    def forward(self, x):
        shift = pyro.sample("shift", dist.Normal(0.0, 1.0))
        with pyro.plate("data", data_size(x), subsample=x):
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(self.decoder(z) + shift, 1.0).to_event(1), obs=x)


class _SubsampledGuide(_Guide):
    def __init__(self):
        super().__init__()
        self.shift_loc = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        pyro.sample("shift", dist.Normal(self.shift_loc, 1.0))
        with pyro.plate("data", data_size(x), subsample=x):
            pyro.sample("z", dist.Normal(self.loc(x), 1.0).to_event(1))


@pytest.mark.parametrize("programs", [(_Subsampled, _SubsampledGuide), "vae"])
def test_fit_with_capture_equals_fit_without(programs):
    def trained(capture_after):
        if programs == "vae":
            run = prepare_recipe("vae", "digits", hidden=[16], limit=100)
            model, guide, data = run.model, run.guide, run.dataset
            objective = get_recipe("vae").objective(run.args)
        else:
            torch.manual_seed(0)
            model, guide = programs[0](), programs[1]()
            x = torch.randn(90, 4)
            data = Dataset("toy", Split(x[:60]), Split(x[60:75]), Split(x[75:]))
            objective = Trace_ELBO()
        history = fit(
            model, guide, data, objective, epochs=4, batch_size=16, lr=1e-2, progress=False,
            kl_weight=lambda epoch: min(1.0, 0.5 + 0.5 * epoch), capture_after=capture_after,
        )
        return history, [p.detach().clone() for p in model.parameters()]

    eager, eager_params = trained(None)
    captured, captured_params = trained(3)  # the weight settles at epoch 1, with 3 full batches
    assert captured.capture["graphs"] >= 1 and captured.capture["off"] == ""
    assert eager.capture["graphs"] == 0 and eager.capture["off"] == "capture is off"
    assert captured.train_loss == pytest.approx(eager.train_loss, rel=1e-6)
    assert captured.val_loss == pytest.approx(eager.val_loss, rel=1e-6)
    for a, b in zip(captured_params, eager_params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="after: expected an integer >= 0 or None"):
        StepCapture(Trace_ELBO(), _Branching(), _Guide(), after=-1)


def test_the_cli_captures_by_default_after_its_steps_and_not_with_no_capture(tmp_path):
    import json

    from pyromix.capture import CAPTURE_AFTER
    from pyromix.cli import main

    common = ["--data", "digits", "--limit", "300", "--epochs", "3", "--hidden", "16"]
    common += ["--samples", "20", "--quiet"]
    metrics = {}
    for name, flags in {"eager": ["--no-capture"], "captured": ["--capture-after", "3"]}.items():
        out = tmp_path / name
        assert main(["fit", "vae", "--out", str(out), *common, *flags]) == 0
        metrics[name] = json.loads((out / "metrics.json").read_text())
    assert metrics["eager"]["capture"] == {"graphs": 0, "seconds": 0.0, "off": "capture is off"}
    assert metrics["captured"]["capture"]["graphs"] >= 1
    assert metrics["captured"]["capture"]["off"] == ""
    for key in ("test_elbo", "test_log_likelihood"):  # the same training, the same evaluation
        assert metrics["captured"][key] == pytest.approx(metrics["eager"][key], rel=1e-5), key
    refused = ["fit", "vae", "--no-capture", "--capture-after", "3", "--out", str(tmp_path / "x")]
    assert main(refused) == 2 and not (tmp_path / "x").exists()  # one or the other
    assert f"default {CAPTURE_AFTER}," in _fit_help()


def _fit_help():
    import contextlib
    import io

    from pyromix.cli import main

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["fit", "--help"]) == 0
    return " ".join(text.getvalue().split())  # argparse wraps lines


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["vae", "gmvae", "nvisa"])
def test_captured_steps_equal_eager_steps_on_cuda(name):
    # The graph draws from the CUDA generator; capture and check must give its draws back.
    run = prepare_recipe(name, "digits", hidden=[16], limit=60, particles=3)
    run.model.cuda(), run.guide.cuda()
    batches = run.dataset.to("cuda").train_batches(10, torch.Generator().manual_seed(0))
    objective = get_recipe(name).objective(run.args)
    step = StepCapture(objective, run.model, run.guide, after=0)
    for i in range(4):
        (loss, grads), (eager_loss, eager) = _eager_then_captured(step, next(batches)[0], i)
        _assert_same(loss, grads, eager_loss, eager, f"{name}, step {i}")
    assert step.graphs == 1 and step.off == "", step.off


def test_settings_that_change_every_few_steps_are_not_captured_again_and_again():
    # KL warm-up on a large data set: a new key every few steps. The least recently used graph
    # goes when a fifth is made, and capturing stays within its share of the steps' time.
    from pyromix.capture import CAPTURE_BUDGET

    run = prepare_recipe("vae", "digits", hidden=[16], limit=40)
    x, _ = next(run.dataset.train_batches(10, torch.Generator().manual_seed(0)))
    objective = get_recipe("vae").objective(run.args)
    weighting = LatentScaleMessenger(1.0)
    model, guide = weighting(run.model), weighting(run.guide)
    step = StepCapture(objective, model, guide, modules=(run.model, run.guide), state=(weighting,))
    step.after = 1
    first = None
    for i in range(120):
        weighting.weight = 1.0 / (1 + i // 3)  # a new weight every three steps
        for p in step.parameters:
            p.grad = None
        pyro.set_rng_seed(i)
        loss = step(x)
        first = first or (step.seconds if step.graphs else None)
        for p in step.parameters:
            p.grad = None
        pyro.set_rng_seed(i)
        with pyro.validation_enabled(False):
            assert loss == pytest.approx(objective.loss_and_grads(model, guide, x), rel=1e-6)
    assert step.graphs >= 1 and len(step._graphs) <= step.max_graphs
    assert step.graphs < 40  # 40 keys, each seen three times
    assert step.seconds <= CAPTURE_BUDGET * step.stepping + first


class _Discrete(PyroModule):
    """A sampled (not enumerated) discrete latent: Trace_ELBO's differentiable loss then has the
    gradient of the score-function surrogate but not the loss's value."""

    def __init__(self):
        super().__init__()
        self.decoder = nn.Linear(1, 4)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            b = pyro.sample("b", dist.Bernoulli(0.5))
            pyro.sample("x", dist.Normal(self.decoder(b.unsqueeze(-1)), 1.0).to_event(1), obs=x)


class _DiscreteGuide(PyroModule):
    def __init__(self):
        super().__init__()
        self.logit = nn.Linear(4, 1)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("b", dist.Bernoulli(logits=self.logit(x).squeeze(-1)))


def test_a_score_function_surrogate_is_caught_by_the_check_and_stays_eager():
    model, guide = _Discrete(), _DiscreteGuide()
    step = StepCapture(Trace_ELBO(), model, guide, after=0)
    torch.manual_seed(0)
    for _ in range(3):
        x = torch.randn(5, 4)
        pyro.set_rng_seed(1)
        loss = step(x)
        pyro.set_rng_seed(1)
        with pyro.validation_enabled(False):
            assert loss == pytest.approx(Trace_ELBO().loss(model, guide, x), rel=1e-6)
    assert step.off.startswith("a captured graph disagreed with the eager step (loss")


def test_renyi_bounds_other_than_the_iwae_bound_stay_eager():
    from pyro.infer import RenyiELBO

    model, guide = _Branching(), _Guide()
    for objective in (RenyiELBO(alpha=0.5, num_particles=3), RenyiELBO(num_particles=3)):
        assert "has no differentiable_loss" in StepCapture(objective, model, guide).off
    # The IWAE bound with a sampled discrete site: RenyiELBO gives it no gradient, VIMCO's core
    # its learning signal; the check sees the difference.
    iwae = RenyiELBO(alpha=0, num_particles=3, vectorize_particles=True, max_plate_nesting=1)
    model, guide = _Discrete(), _DiscreteGuide()
    step = StepCapture(iwae, model, guide, after=0)
    for i in range(3):
        pyro.set_rng_seed(i)
        step(torch.randn(5, 4))
    assert step.off.startswith("a captured graph disagreed with the eager step (gradients")


def test_a_replaced_submodule_is_not_replayed_from_a_stale_graph():
    model, guide = _Branching(), _Guide()
    step = StepCapture(Trace_ELBO(), model, guide, after=0, budget=1e9)
    x = torch.zeros(3, 4)
    for i in range(3):
        pyro.set_rng_seed(i)
        step(x)
    assert step.graphs == 1
    model.decoder = nn.Linear(2, 4)  # new parameters the graph has never seen
    for i in range(3, 6):
        pyro.set_rng_seed(i)
        loss = step(x)
        pyro.set_rng_seed(i)
        with pyro.validation_enabled(False):
            assert loss == pytest.approx(Trace_ELBO().loss(model, guide, x), rel=1e-6)
    model.decoder.bias.data += 1.0  # in place: the new graph reads it
    pyro.set_rng_seed(6)
    loss = step(x)
    pyro.set_rng_seed(6)
    with pyro.validation_enabled(False):
        assert loss == pytest.approx(Trace_ELBO().loss(model, guide, x), rel=1e-6)
    assert step.graphs == 2 and step.off == ""


def test_a_resumed_captured_run_equals_an_uninterrupted_one(tmp_path):
    # A resumed fit starts with no graphs: its first steps run eagerly, with the same numbers.
    def trained(epochs, checkpoint, resume=False):
        run = prepare_recipe("vae", "digits", hidden=[16], limit=100)
        objective = get_recipe("vae").objective(run.args)
        return fit(
            run.model, run.guide, run.dataset, objective, epochs=epochs, batch_size=16,
            progress=False, capture_after=3, checkpoint=checkpoint, resume=resume,
        )

    whole = trained(4, tmp_path / "whole.pt")
    trained(2, tmp_path / "cut.pt")
    resumed = trained(4, tmp_path / "cut.pt", resume=True)
    assert whole.capture["graphs"] >= 1 and resumed.capture["graphs"] >= 1
    assert resumed.train_loss == pytest.approx(whole.train_loss, rel=1e-6)
    assert resumed.val_loss == pytest.approx(whole.val_loss, rel=1e-6)


class _RareBranch(_Branching):
    """Branches on a data value that one training point carries: one batch in six takes the
    other branch, so the batches of the capture and its first check most likely do not."""

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            scale = 3.0 if bool((x[:, 0] > 5).any()) else 1.0
            pyro.sample("x", dist.Normal(self.decoder(z), scale).to_event(1), obs=x)


def _rare_branch_fit(capture_after, monkeypatch, recheck_every=3):
    import pyromix.capture

    monkeypatch.setattr(pyromix.capture, "RECHECK_EVERY", recheck_every)
    torch.manual_seed(0)
    model, guide = _RareBranch(), _Guide()
    x = torch.randn(75, 4)
    x[1, 0] = 10.0  # the marker: one training point, so one batch of six per epoch
    data = Dataset("toy", Split(x[:60]), Split(x[60:70]), Split(x[70:]))
    history = fit(
        model, guide, data, Trace_ELBO(), epochs=6, batch_size=10, lr=1e-2, progress=False,
        capture_after=capture_after,
    )
    return history, [p.detach().clone() for p in [*model.parameters(), *guide.parameters()]]


def test_a_branch_the_first_batches_do_not_show_is_caught_by_a_recheck_and_redone_eagerly(
    monkeypatch,
):
    eager, eager_params = _rare_branch_fit(None, monkeypatch)
    # Checked once only (as before re-checks): the first check passes, and the rare batches are
    # replayed through the other branch's graph, so the run is not the eager one.
    once, _ = _rare_branch_fit(2, monkeypatch, recheck_every=10**9)
    assert once.capture["graphs"] >= 1 and once.capture["off"] == ""
    assert once.train_loss != pytest.approx(eager.train_loss, rel=1e-6)
    rechecked, params = _rare_branch_fit(2, monkeypatch)
    assert "disagreed with the eager step on a re-check" in rechecked.capture["off"]
    assert rechecked.capture["off"].endswith("the run was redone eagerly")
    assert rechecked.train_loss == pytest.approx(eager.train_loss, rel=1e-6)
    assert rechecked.val_loss == pytest.approx(eager.val_loss, rel=1e-6)
    for a, b in zip(params, eager_params):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_a_failed_recheck_outside_fit_warns_and_goes_on_eagerly():
    model, guide = _Branching(), _Guide()
    step = StepCapture(Trace_ELBO(), model, guide, after=0, recheck_every=2, budget=1e9)
    zeros, ones = torch.zeros(3, 4), torch.ones(3, 4)
    for x in (zeros, zeros, zeros, zeros):  # capture, check, two replays
        step(x)
    assert step.graphs == 1 and not step.replayed_wrongly
    with pytest.warns(UserWarning, match="re-check"):
        step(ones)  # the re-check meets the other branch
    assert step.replayed_wrongly and "after 2 replays" in step.off
    from pyromix.capture import CaptureDisagreed

    step = StepCapture(Trace_ELBO(), model, guide, after=0, recheck_every=2, strict=True)
    for x in (zeros, zeros, zeros, zeros):
        step(x)
    with pytest.raises(CaptureDisagreed, match="re-check"):
        step(ones)


def test_a_pyro_param_outside_the_modules_is_caught_by_the_check():
    # The graph computes gradients for the modules' parameters only: a global pyro.param that
    # the program also learns would silently stop learning.
    class Shifted(_Branching):
        def forward(self, x):
            shift = pyro.param("shift", torch.zeros(4))
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
                pyro.sample("x", dist.Normal(self.decoder(z) + shift, 1.0).to_event(1), obs=x)

    step = StepCapture(Trace_ELBO(), Shifted(), _Guide(), after=0)
    for _ in range(3):
        step(torch.zeros(3, 4))
    assert step.off.endswith("(parameters outside the modules: shift)") and step.graphs == 0


class _Model(_Branching):
    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(self.decoder(z), 1.0).to_event(1), obs=x)


def _toy_programs(base):
    class Model(base):
        def __init__(self):
            super().__init__()
            self.decoder = nn.Linear(2, 4)

        forward = _Model.forward

    class Guide(base):
        def __init__(self):
            super().__init__()
            self.loc = nn.Linear(4, 2)

        forward = _Guide.forward

    return Model(), Guide()


@pytest.mark.parametrize("local", [False, True], ids=["PyroModule", "pyromix-LocalModule"])
def test_captured_elbo_in_plain_svi_equals_its_elbo(local):
    # Pyro's default global param store, or pyromix's module-local parameters
    from pyro.infer import SVI

    from pyromix.infer import CapturedELBO
    from pyromix.local_params import LocalModule

    def trained(objective):
        torch.manual_seed(0)
        pyro.clear_param_store()
        model, guide = _toy_programs(LocalModule if local else PyroModule)
        svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), objective)
        losses = []
        for i in range(12):
            pyro.set_rng_seed(i)
            losses.append(svi.step(torch.randn(5, 4) + i % 3))
        assert (len(pyro.get_param_store()) == 0) == local
        return losses, [p.detach().clone() for p in [*model.parameters(), *guide.parameters()]]

    eager_losses, eager = trained(Trace_ELBO())
    captured = CapturedELBO(Trace_ELBO(), after=2, recheck_every=3)
    losses, params = trained(captured)
    (step,) = captured.steps.values()
    assert step.graphs == 1 and step.rechecks >= 1 and step.off == ""  # replayed steps trained
    assert losses == pytest.approx(eager_losses, rel=1e-6)
    for a, b in zip(params, eager):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_captured_elbo_gives_the_loss_and_gradients_of_its_elbo():
    from pyro.infer import RenyiELBO

    from pyromix.infer import CapturedELBO

    model, guide = _Model(), _Guide()
    captured = CapturedELBO(Trace_ELBO(), after=0)
    params = [*model.parameters(), *guide.parameters()]
    for i in range(4):  # capture, check, then two replays
        x = torch.randn(5, 4)
        for p in params:
            p.grad = None
        pyro.set_rng_seed(i)
        with pyro.validation_enabled(False):
            eager = Trace_ELBO().loss_and_grads(model, guide, x), _grads(params)
        for p in params:
            p.grad = None
        pyro.set_rng_seed(i)
        _assert_same(captured.loss_and_grads(model, guide, x), _grads(params), *eager, f"step {i}")
    assert captured.step_of(model, guide).graphs == 1
    pyro.set_rng_seed(9)
    loss = captured.differentiable_loss(model, guide, x)
    pyro.set_rng_seed(9)
    assert loss.item() == pytest.approx(Trace_ELBO().loss(model, guide, x), rel=1e-6)
    assert not hasattr(CapturedELBO(RenyiELBO()), "differentiable_loss")
    with pytest.raises(ValueError, match="elbo: expected a pyro.infer.ELBO, got function"):
        CapturedELBO(lambda model, guide: 0.0)
    with pytest.raises(ValueError, match="recheck_every: expected an integer >= 1, got 0"):
        CapturedELBO(Trace_ELBO(), recheck_every=0)


def test_without_the_private_apis_fit_warns_once_and_trains_eagerly(monkeypatch):
    import warnings

    from pyromix import private_apis

    def trained():
        run = prepare_recipe("vae", "digits", hidden=[16], limit=100)
        objective = get_recipe("vae").objective(run.args)
        return fit(
            run.model, run.guide, run.dataset, objective, epochs=2, batch_size=16,
            progress=False, capture_after=2,
        )

    captured = trained()
    reason = "torch's private recording APIs are missing (ImportError: simulated)"
    monkeypatch.setattr(private_apis, "unavailable", lambda: reason)
    monkeypatch.setattr(private_apis, "_WARNED", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = [trained(), trained()]
    assert [str(w.message) for w in caught if "private" in str(w.message)] == [
        f"{reason}; steps run eagerly, with the same results"
    ]
    assert captured.capture["graphs"] >= 1
    for history in fallback:
        assert history.capture == {"graphs": 0, "seconds": 0.0, "off": reason}
        assert history.train_loss == pytest.approx(captured.train_loss, rel=1e-6)


def test_capture_is_off_outside_the_tested_torch_which_pyproject_declares(monkeypatch):
    import re
    from pathlib import Path

    from pyromix import private_apis

    assert private_apis.unavailable() == ""  # the suite runs on the tested torch
    tested = ".".join(map(str, private_apis.TESTED_TORCH))
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(rf'"torch>=[0-9.]+",\s*# captured steps are tested with {tested}\.x', pyproject)
    monkeypatch.setattr(torch, "__version__", "2.99.1+cu128")
    assert private_apis.unavailable() == (
        f"torch 2.99.1+cu128 is not the tested {tested}.x: captured steps are off"
    )

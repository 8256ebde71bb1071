"""fit's callbacks: a user's callback sees the loop's events in order and can stop training."""

import math

import pytest
from pyro.infer import Trace_ELBO

from pyromix.runs import prepare_recipe
from pyromix.train import Callback, fit, load_checkpoint


class Recorder(Callback):
    """Records every event with the epoch (and step) it came at; stops after ``stop_after``
    epochs if given."""

    def __init__(self, stop_after=None):
        self.events, self.stop_after = [], stop_after

    def on_fit_start(self, loop):
        self.events.append(("fit_start", loop.start))

    def on_epoch_start(self, loop):
        self.events.append(("epoch_start", loop.epoch))

    def on_step_end(self, loop):
        assert math.isfinite(loop.loss) and len(loop.batch) > 0
        self.events.append(("step_end", loop.epoch, loop.step))

    def on_epoch_end(self, loop):
        assert loop.history.epochs == loop.epoch + 1  # the epoch is in the history already
        self.events.append(("epoch_end", loop.epoch))
        if self.stop_after is not None and loop.epoch + 1 == self.stop_after:
            loop.stop(f"stopped by the user after {self.stop_after} epochs")

    def on_fit_end(self, loop):
        self.events.append(("fit_end", loop.history.epochs))


def _run():
    # 50 training points in batches of 20: steps of 20, 20 and 10 points per epoch.
    return prepare_recipe("vae", "onehot", hidden=[8], limit=50, epochs=3, patience=None)


def expected(epochs, steps=3):
    events = [("fit_start", 0)]
    for epoch in range(epochs):
        events += [("epoch_start", epoch)]
        events += [("step_end", epoch, step) for step in range(steps)]
        events += [("epoch_end", epoch)]
    return events + [("fit_end", epochs)]


def test_a_user_callback_sees_every_event_in_order():
    run, recorder = _run(), Recorder()
    history = fit(
        run.model, run.guide, run.dataset, Trace_ELBO(), epochs=3, batch_size=20,
        progress=False, callbacks=[recorder],
    )
    assert len(run.dataset.train) == 50 and history.epochs == 3 and history.stopped == ""
    assert recorder.events == expected(3)


def test_a_user_callback_stops_training_and_the_checkpoint_records_it(tmp_path):
    run, recorder = _run(), Recorder(stop_after=2)
    history = fit(
        run.model, run.guide, run.dataset, Trace_ELBO(), epochs=5, batch_size=20,
        progress=False, callbacks=[recorder], checkpoint=tmp_path / "c.pt", checkpoint_every=3600,
    )
    assert history.epochs == 2 and history.stopped == "stopped by the user after 2 epochs"
    assert recorder.events == expected(2)
    saved = load_checkpoint(tmp_path / "c.pt")  # written at the stop, though not due by the clock
    assert saved["epoch"] == 2 and saved["history"]["stopped"] == history.stopped
    resumed = Recorder()
    again = fit(
        run.model, run.guide, run.dataset, Trace_ELBO(), epochs=5, batch_size=20,
        progress=False, callbacks=[resumed], checkpoint=tmp_path / "c.pt", resume=True,
    )
    assert again.epochs == 2 and resumed.events == [("fit_start", 2), ("fit_end", 2)]


def test_fit_end_comes_also_when_training_fails():
    class Failing(Recorder):
        def on_step_end(self, loop):
            super().on_step_end(loop)
            raise RuntimeError("the user's callback failed")

    run, failing = _run(), Failing()
    with pytest.raises(RuntimeError, match="the user's callback failed"):
        fit(run.model, run.guide, run.dataset, Trace_ELBO(), epochs=2, batch_size=20,
            progress=False, callbacks=[failing])
    assert failing.events == [("fit_start", 0), ("epoch_start", 0), ("step_end", 0, 0), ("fit_end", 0)]


@pytest.mark.parametrize("callbacks, given", [([object()], "object"), (Recorder(), "Recorder"), ([3], "int")])
def test_callbacks_that_are_not_callbacks_are_refused_before_training(callbacks, given):
    run, recorder = _run(), Recorder()
    with pytest.raises(ValueError, match=f"callbacks: expected .*got {given}$"):
        fit(run.model, run.guide, run.dataset, Trace_ELBO(), epochs=1, progress=False,
            callbacks=callbacks)
    assert recorder.events == []


def test_stop_needs_a_reason():
    class Silent(Callback):
        def on_epoch_end(self, loop):
            loop.stop("")

    run = _run()
    with pytest.raises(ValueError, match="stop: expected a non-empty reason, got ''"):
        fit(run.model, run.guide, run.dataset, Trace_ELBO(), epochs=2, progress=False,
            callbacks=[Silent()])

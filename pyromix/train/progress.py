"""The progress bar of :func:`~pyromix.train.fit`, as a callback: one tick per epoch, with the
epoch's training and validation losses and KL weight."""

from __future__ import annotations

from tqdm.auto import tqdm

from .callback import Callback, Loop

__all__ = ["ProgressBar"]


class ProgressBar(Callback):
    """A tqdm bar over the epochs of this call (``show=False``: none)."""

    def __init__(self, show: bool, end: int) -> None:
        self.show, self.end, self.bar = show, end, None

    def on_fit_start(self, loop: Loop) -> None:
        total = max(self.end - loop.start, 0)
        self.bar = tqdm(total=total, desc="fit", unit="epoch", disable=not self.show)

    def on_epoch_end(self, loop: Loop) -> None:
        history = loop.history
        postfix = {"loss": f"{history.train_loss[-1]:.3f}", "val": f"{history.val_loss[-1]:.3f}"}
        # tqdm redraws at its own pace
        self.bar.set_postfix(postfix, kl=history.kl_weight[-1], refresh=False)
        self.bar.update(1)

    def on_fit_end(self, loop: Loop) -> None:
        if self.bar is not None:
            self.bar.close()

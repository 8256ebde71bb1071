"""A run's report: ``metrics.json`` and the figures its model supports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyro
import torch

from .. import plots
from ..diagnostics import plot_diagnostics
from ..protocol import capabilities
from ..rundir import METRICS
from .readouts import generate, reconstruct
from .run import Run
from .store import write_json

__all__ = ["MAX_SAMPLE_ROWS", "write_report"]

MAX_SAMPLE_ROWS = 10


def _plot_samples(run: Run, path: Path, n: int, *, by_component: bool) -> Path:
    """samples.png: one row per cluster or prior component (first 10) for image data."""
    shape = run.dataset.image_shape
    clusters = getattr(run.model, "num_clusters", None)
    components = clusters or getattr(run.model, "num_components", None)
    row_labels = None
    if by_component and shape is not None:
        rows = min(components, MAX_SAMPLE_ROWS)
        per_row = max(1, min(16, n // rows))
        means, binarized = generate(run, per_row, components=range(rows))
        row_labels = [f"{'y' if clusters else 'component'}={k}" for k in range(rows)]
    else:
        means, binarized = generate(run, n)
    return plots.plot_samples(
        means,
        path,
        image_shape=shape,
        binarized=binarized if shape else None,  # plotted for images only
        data=None if shape else run.dataset.test.x.cpu(),
        row_labels=row_labels,
        title=f"{run.name} samples",
    )


def write_report(
    run: Run, metrics: dict[str, Any], out: str | os.PathLike, *, n: int = 64
) -> list[Path]:
    """Write ``metrics.json``, ``curves.png`` and, where the model supports them
    (:func:`pyromix.protocol.capabilities`) and they apply, ``samples.png``,
    ``reconstructions.png``, ``latents.png`` and ``manifold.png`` (2-D latent, image data)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shape = run.dataset.image_shape
    pyro.set_rng_seed(run.args["seed"])
    can = {f: reason is None for f, reason in capabilities(run.model, run.guide).items()}
    test = run.dataset.test
    written = [
        write_json(out / METRICS, metrics),
        plots.plot_curves(
            {"train_loss": run.history.train_loss, "val_loss": run.history.val_loss},
            out / "curves.png",
            title=f"{run.name}: negative objective, nats per data point",
        ),
    ]
    if can["samples"]:
        by_component = can["component_samples"]
        written.append(_plot_samples(run, out / "samples.png", n, by_component=by_component))
    with torch.no_grad():
        z = run.guide.latent_mean(test.x) if hasattr(run.guide, "latent_mean") else None
        if shape is not None and can["reconstructions"]:
            recon = reconstruct(run, test.x)
            written.append(
                plots.plot_reconstructions(
                    test.x.cpu(), recon.cpu(), shape, out / "reconstructions.png"
                )
            )
        if z is not None and "latents" not in metrics.get("skipped", {}):
            labels = None if test.y is None else test.y.cpu()
            written.append(plots.plot_latents(z.cpu(), out / "latents.png", labels=labels))
        sees_c = getattr(run.model, "decoder_sees_y", False)
        two_d = run.args.get("latent_dim") == 2 and can["manifold"]
        if shape is not None and two_d and not sees_c:
            device = next(run.model.parameters()).device
            # a model whose decoder reads more than the 2-D latent says how to decode it
            decode = getattr(run.model, "decode_manifold", run.model.likelihood.mean)
            written.append(
                plots.plot_manifold(
                    decode,
                    out / "manifold.png",
                    image_shape=shape,
                    device=device,
                )
            )
    for hook in run.hooks:  # what a recipe's training steps recorded, e.g. a GAN's curves
        if hasattr(hook, "report"):
            written += hook.report(out, shape, title=run.name)
    diagnostics = plot_diagnostics(metrics, out / "diagnostics.png", title=run.name)
    return written + ([diagnostics] if diagnostics else [])

"""Figures: sample grids, reconstructions, the 2-D latent manifold, latents, curves.

Every function draws into the matplotlib ``Axes`` it is given (``ax=``), or on a figure of its
own made with the Agg canvas rather than through ``pyplot``: no window opens, no backend is
forced, and a notebook's pyplot state is left alone. With ``path`` it writes the figure there
(the format follows its extension, ``.png`` usually, creating parent folders) and returns the
path as a :class:`pathlib.Path`; without, it returns the figure (``ax.figure`` with ``ax``).
Arrays may be numpy arrays or torch tensors on any device.

Image panels use the ``gray`` colour map with fixed limits 0 (black) and 1 (white), so a pixel's
shade is its value and never a rescaling that differs between figures.

Example:
    >>> import torch
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> left, right = fig.subplots(1, 2)
    >>> plot_curves({"train_loss": [3.0, 2.1, 1.8]}, ax=left) is fig
    True
    >>> plot_latents(torch.randn(100, 2), ax=right) is fig
    True
"""

from .common import check_image_path
from .curves import plot_curves
from .images import image_grid, plot_manifold, plot_reconstructions
from .latents import plot_latents
from .samples import plot_samples

__all__ = [
    "check_image_path",
    "image_grid",
    "plot_samples",
    "plot_reconstructions",
    "plot_manifold",
    "plot_latents",
    "plot_curves",
]

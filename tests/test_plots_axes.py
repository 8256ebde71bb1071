"""Every plotting function draws into a user's Axes and returns that Axes' figure."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from pyromix import plots


def two_axes():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    return fig, left, right


def test_image_grid_draws_its_tiles_into_the_given_axes():
    fig, left, right = two_axes()
    images = torch.tensor([0.0, 1.0, 0.25, 0.75])[:, None, None].expand(4, 2, 2)
    assert plots.image_grid(images, (2, 2), ax=right, nrow=2, title="four") is fig
    shown = np.asarray(right.images[0].get_array())
    # 2 x 2 tiles of 2 px with 1 px of grey (0.5) around each: a 7 x 7 picture.
    assert shown.shape == (7, 7) and shown[0].tolist() == [0.5] * 7
    assert shown[1:3, 1:3].tolist() == [[0.0, 0.0]] * 2 and shown[4:6, 4:6].tolist() == [[0.75] * 2] * 2
    assert right.get_title() == "four" and not left.images and not left.lines


def test_curves_latents_reconstructions_and_manifold_draw_into_the_given_axes():
    fig, left, right = two_axes()
    assert plots.plot_curves({"train_loss": [3.0, 2.0, 1.5]}, ax=left) is fig
    assert left.lines[0].get_xdata().tolist() == [1, 2, 3]
    assert left.lines[0].get_ydata().tolist() == [3.0, 2.0, 1.5]
    z = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    assert plots.plot_latents(z, ax=right, labels=np.array([0, 1, 1])) is fig
    drawn = np.concatenate([c.get_offsets() for c in right.collections])
    assert sorted(map(tuple, drawn)) == sorted(map(tuple, z))

    fig, left, right = two_axes()
    x = torch.rand(3, 4)
    assert plots.plot_reconstructions(x, 1 - x, (2, 2), ax=left) is fig
    shown = np.asarray(left.images[0].get_array())
    assert np.allclose(shown[1:3, 1:3], x[0].reshape(2, 2)) and np.allclose(shown[4:6, 1:3], 1 - x[0].reshape(2, 2))
    assert plots.plot_manifold(lambda z: torch.full((len(z), 4), 0.3), image_shape=(2, 2), n=2, ax=right) is fig
    assert np.allclose(np.asarray(right.images[0].get_array())[1:3, 1:3], 0.3)


def test_samples_of_two_panels_take_two_axes_and_refuse_one():
    fig, left, right = two_axes()
    probs = torch.rand(4, 4)
    binary = (probs > 0.5).float()
    assert plots.plot_samples(probs, image_shape=(2, 2), binarized=binary, ax=[left, right]) is fig
    assert np.allclose(np.asarray(right.images[0].get_array())[1:3, 1:3], binary[0].reshape(2, 2))
    assert left.get_title() == "Samples: means" and fig.get_suptitle() == ""  # the user's figure
    with pytest.raises(ValueError, match=r"ax: expected a sequence of 2 matplotlib Axes .* got Axes"):
        plots.plot_samples(probs, image_shape=(2, 2), binarized=binary, ax=left)
    samples, data = np.random.rand(10, 3), np.random.rand(10, 3)
    fig, left, right = two_axes()
    assert plots.plot_samples(samples, data=data, ax=(left, right)) is fig
    heights = [p.get_height() for p in right.patches]
    assert np.allclose(heights, [*samples.mean(0), *data.mean(0)])


def test_with_a_path_the_users_figure_is_written_and_the_path_returned(tmp_path):
    fig, left, _ = two_axes()
    out = plots.plot_curves({"loss": [1.0, 0.5]}, tmp_path / "sub" / "curves.png", ax=left)
    assert out == tmp_path / "sub" / "curves.png" and out.read_bytes().startswith(b"\x89PNG")
    assert left.lines  # drawn on the user's axes, and that figure was written


def test_without_path_or_axes_a_new_figure_is_returned():
    fig = plots.plot_latents(np.random.randn(20, 3))
    assert isinstance(fig, Figure) and len(fig.axes) == 1 and fig.axes[0].collections


@pytest.mark.parametrize("ax", ["left", 3, [None]])
def test_axes_that_are_not_axes_are_refused(ax):
    with pytest.raises(ValueError, match="ax: expected a matplotlib Axes for this figure's 1 panel"):
        plots.plot_curves({"loss": [1.0]}, ax=ax)

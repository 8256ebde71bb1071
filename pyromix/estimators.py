"""scikit-learn style estimators over pyromix recipes: ``fit`` / ``predict`` / ``transform`` / ...

Inputs and outputs are numpy arrays; the networks and tensors live on the estimator's ``device``.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import replace
from typing import Any, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_array, check_is_fitted

from .data import Dataset, load_dataset
from .evaluate import eval_mode, log_likelihood
from .diagnostics import active_units, cluster_usage, collapse_warning, collapse_warnings
from .recipes import available_recipes, get_recipe
from .restarts import train_restarts
from .runs import cluster_probabilities, prepare_recipe
from .schema import Interval, Options, check_value

__all__ = ["MixtureClustering", "cluster_recipes"]

# Share of the data held out for early stopping and model selection; the rest is trained on.
VAL_FRACTION = 0.1
# Points per forward pass at predict time: bounds memory for any number of points.
BATCH_SIZE = 10_000


def cluster_recipes() -> list[str]:
    """The recipes whose model has clusters (a ``clusters`` argument), e.g. ``gmvae``, ``vade``;
    registered plugins and entry points included. Semi-supervised recipes, which reveal labels
    by default (``m2``), are not clustering models of unlabelled ``X``."""
    return [
        name
        for name in available_recipes()
        if "clusters" in get_recipe(name).defaults and not get_recipe(name).defaults.get("labeled")
    ]


def _plain(value: Any) -> Any:
    """numpy scalars (from grid searches over ``np.arange``) as Python numbers."""
    return value.item() if isinstance(value, np.generic) else value


def _check_int(name: str, value: Any, low: int, *, auto: bool = False, none: bool = False) -> None:
    """ValueError unless ``value`` is an integer >= ``low`` (or ``"auto"`` / None if allowed)."""
    allowed = (*([Options("auto")] if auto else []), *([None] if none else []), Interval(int, low))
    check_value(name, _plain(value), *allowed)


class MixtureClustering(ClusterMixin, BaseEstimator):
    r"""Clustering with a mixture-prior VAE, trained as a pyromix recipe, with scikit-learn's API.

    The recipe's model ``y ~ Cat(pi)``, ``z | y ~ N(mu_y, sigma_y)``, ``x | z ~ p(x | z)`` is
    trained on ``X`` with the recipe's objective, initialisation (autoencoder pretraining + a GMM
    on the codes) and schedules. The cluster of a point is the argmax of the model's cluster
    readout: ``q(y | x)`` for guides with a cluster head, ``p(y | z = E_q[z | x])`` for VaDE.

    ``fit`` trains on all of ``X`` except a random ``VAL_FRACTION`` (10%) validation split, which
    picks the best epoch and drives early stopping (``patience``); the run's test split is that
    same validation split, so ``pyromix.runs.evaluate_run(est.run_)`` reports held-out numbers.
    (:func:`pyromix.runs.train_recipe` would also hold out a 20% test split, which an estimator
    has no use for, so ``fit`` builds the run with ``prepare_recipe`` and trains it with
    ``train_run`` on its own split.)

    A parameter left at ``"auto"`` (``pretrain_epochs``, ``likelihood``, ``binarize``,
    ``patience``) takes the recipe's own default, :data:`pyromix.recipes.MIXTURE_DEFAULTS` for the
    mixture recipes (Li et al. 2020's choices: long pretraining, a Gaussian likelihood, and no early
    stopping since std annealing changes the objective every few epochs). Where a recipe leaves
    ``likelihood`` or ``binarize`` to the data, ``"auto"`` means Bernoulli for binary data, the
    discretised logistic for other data on L levels in [0, 1] and Gaussian otherwise
    (:func:`pyromix.likelihoods.automatic_likelihood`), and dynamic binarisation of [0, 1] data
    for a Bernoulli likelihood.

    Everything that draws random numbers is seeded by ``random_state``: the same
    ``random_state`` gives the same split, weights, ``labels_``, ``predict_proba``,
    ``score_samples`` and ``sample``. ``fit`` seeds Pyro's global RNGs, as pyromix training
    does; ``score_samples`` and ``sample`` draw from a forked RNG and leave the global state alone.

    Arguments:
        recipe: a recipe with clusters, one of :func:`cluster_recipes` (``"gmvae"``,
            ``"nvisa"``, ``"nvil"``, ``"gmvae-meanfield"``, ``"vade"``).
        n_clusters: K, the number of mixture components.
        latent_dim: size of z.
        hidden: widths of the encoder's hidden layers (the decoder mirrors them).
        epochs: maximum number of training epochs.
        batch_size: mini-batch size.
        lr: Adam learning rate.
        pretrain_epochs: autoencoder pretraining epochs before the GMM initialisation (0: none).
        likelihood: ``"auto"`` or a name in ``pyromix.likelihoods.LIKELIHOODS``.
        binarize: ``"none"``, ``"static"``, ``"dynamic"`` or ``"auto"``.
        patience: stop after this many epochs without a better validation loss; None trains
            all ``epochs``.
        num_samples: importance samples per point for :meth:`score_samples`.
        random_state: a non-negative integer seed.
        device: ``"cpu"`` or ``"cuda[:N]"``.
        verbose: show progress bars.
        n_init: the number of initialisations (pretraining included), each trained for a tenth
            of ``epochs``; the one with the lowest validation loss is trained to the end
            (:mod:`pyromix.restarts`; labels are never read). 1: one start.
        recipe_kwargs: any other recipe arguments, e.g. ``{"prior_std_min": 1.0,
            "particles": 15}``; see ``pyromix list`` and :data:`pyromix.recipes.MIXTURE_DEFAULTS`.

    Attributes:
        run_: the trained :class:`pyromix.runs.Run` (model, guide, data, arguments).
        history_: its :class:`pyromix.train.History`.
        labels_: cluster of each training point, shape (n_samples,).
        restarts_: each start's seed, validation loss and seconds, and which was chosen (empty
            for ``n_init=1``).
        diagnostics_: the collapse diagnostics on ``X``
            (:mod:`pyromix.diagnostics`): cluster shares, effective clusters, active units and
            ``warnings``; a collapsed fit also raises a ``UserWarning`` saying so.
        cluster_centers_: the prior means mu_y in latent space, shape (n_clusters, latent_dim).
        weights_: the mixture weights pi, shape (n_clusters,).
        n_features_in_: number of features seen in ``fit``.

    References:
        Li et al., NVISA (Li et al. 2020), eq. 1-7 and III-B (pretraining + GMM initialisation);
        Jiang et al. 2017, VaDE (Chowdhury et al.), eq. 16-17 (the p(y | z) readout).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = np.clip(np.repeat(np.eye(3), 20, 0) + 0.05 * rng.normal(size=(60, 3)), 0, 1)
        >>> est = MixtureClustering(n_clusters=3, latent_dim=2, hidden=(16,), epochs=2,
        ...                         pretrain_epochs=1, likelihood="gaussian").fit(X)
        >>> est.predict_proba(X).shape, est.transform(X).shape, est.sample(4)[0].shape
        ((60, 3), (60, 2), (4, 3))
    """

    def __init__(
        self,
        recipe: str = "gmvae",
        n_clusters: int = 10,
        latent_dim: int = 10,
        hidden: tuple[int, ...] = (256, 256),
        epochs: int = 200,
        batch_size: int = 100,
        lr: float = 1e-3,
        pretrain_epochs: int | str = "auto",
        likelihood: str = "auto",
        binarize: str = "auto",
        patience: int | str | None = "auto",
        num_samples: int = 1000,
        random_state: int = 0,
        device: str = "cpu",
        verbose: bool = False,
        n_init: int = 1,
        recipe_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.recipe = recipe
        self.n_clusters = n_clusters
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.pretrain_epochs = pretrain_epochs
        self.likelihood = likelihood
        self.binarize = binarize
        self.patience = patience
        self.num_samples = num_samples
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.n_init = n_init
        self.recipe_kwargs = recipe_kwargs

    def fit(self, X, y=None) -> MixtureClustering:
        """Train the recipe on ``X`` (90% trained on, 10% validation) and label ``X``.

        Arguments:
            X: array of shape (n_samples, n_features), finite.
            y: ignored; present for the scikit-learn API.

        Returns:
            self, fitted.
        """
        x = self._check_X(X, fitted=False)
        arguments = self._recipe_arguments(n_samples=x.shape[0])
        run = prepare_recipe(self.recipe, x, device=self.device, **arguments)
        run = replace(run, dataset=_fit_split(x, run.args))
        self.run_ = train_restarts(run, _plain(self.n_init), progress=bool(self.verbose))
        self.history_ = self.run_.history
        self.restarts_ = self.run_.restarts
        self.n_features_in_ = x.shape[1]
        model = self.run_.model
        self.cluster_centers_ = model.loc.detach().cpu().numpy()
        self.weights_ = model.cluster_prior().probs.detach().cpu().numpy()
        self.labels_ = self.predict(x)
        self.diagnostics_ = self._diagnostics(x)
        return self

    def predict(self, X) -> np.ndarray:
        """The most probable cluster of each point, shape (n_samples,)."""
        return self.predict_proba(X).argmax(axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Cluster probabilities, shape (n_samples, n_clusters), rows summing to 1.

        ``q(y | x)`` from the guide, or ``p(y | z)`` at the posterior mean z for VaDE
        (:func:`pyromix.runs.cluster_probabilities`).
        """
        return self._batched(lambda x: cluster_probabilities(self.run_, x), X)

    def transform(self, X) -> np.ndarray:
        """Latent means ``E_q[z | x]``, shape (n_samples, latent_dim)."""
        return self._batched(lambda x: self.run_.guide.latent_mean(x), X)

    def score_samples(self, X) -> np.ndarray:
        """Importance-sampled ``log p(x)`` of each point in nats, shape (n_samples,).

        Uses ``num_samples`` samples from the guide per point (Burda et al. 2016); repeatable
        for a given ``random_state``.
        """
        x = self._tensor(X)
        with self._seeded():
            result = log_likelihood(self.run_.model, self.run_.guide, x, self.num_samples)
        return result.log_px.double().numpy()

    def score(self, X, y=None) -> float:
        """Mean importance-sampled ``log p(x)`` over ``X`` (higher is better); ``y`` is ignored."""
        return float(self.score_samples(X).mean())

    def sample(
        self, n_samples: int = 1, cluster: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Generate points: decoder means of ``z ~ p(z | y)``, ``y ~ Cat(pi)`` or ``y = cluster``.

        As in :meth:`sklearn.mixture.GaussianMixture.sample`, the points come grouped by
        cluster, with their labels in increasing order; repeatable for a given ``random_state``.

        Arguments:
            n_samples: number of points, an integer >= 1.
            cluster: draw every point from this cluster, ``0 <= cluster < n_clusters``.

        Returns:
            ``(X, y)``: X of shape (n_samples, n_features) and the cluster labels y (n_samples,).
        """
        check_is_fitted(self)
        n_samples, cluster = _plain(n_samples), _plain(cluster)
        check_value("n_samples", n_samples, Interval(int, 1))
        k = self.run_.model.num_clusters
        check_value("cluster", cluster, None, Interval(int, 0, k, closed="left"))
        model = self.run_.model
        with self._seeded(), eval_mode(model):
            if cluster is None:
                # cluster indices also for models whose y site is one-hot (CP-VAE)
                weights = torch.distributions.Categorical(logits=model.cluster_prior().logits)
                y = weights.sample((n_samples,))
                counts = torch.bincount(y, minlength=k).tolist()
            else:
                counts = [n_samples if j == cluster else 0 for j in range(k)]
            x = torch.cat([model.generate(c, component=j) for j, c in enumerate(counts) if c])
        labels = np.repeat(np.arange(k), counts)
        return x.cpu().numpy(), labels

    def _diagnostics(self, x: np.ndarray) -> dict[str, Any]:
        """The collapse diagnostics on ``x``; a ``UserWarning`` names a collapse
        (:func:`pyromix.diagnostics.collapse_warning`)."""
        found = cluster_usage(torch.as_tensor(self.labels_), self.n_clusters)
        if len(x) > 1:
            found |= active_units(torch.as_tensor(self.transform(x)))
        found["warnings"] = collapse_warnings(found)
        line = collapse_warning(found)
        if line:
            warnings.warn(line, UserWarning, stacklevel=3)
        return found

    def _recipe_arguments(self, n_samples: int) -> dict[str, Any]:
        """The recipe overrides from the parameters; ValueError on any bad one, before training.

        Values the recipe layer checks itself (``latent_dim``, ``hidden``, ``lr``, ...) are
        passed on as they are; ``"auto"`` values are left out so the recipe's defaults apply.
        """
        choices = cluster_recipes()
        if self.recipe not in choices:
            known = isinstance(self.recipe, str) and self.recipe in available_recipes()
            hint = " (it has no clusters)" if known else ""
            raise ValueError(
                f"recipe: expected one of {', '.join(choices)}; got {self.recipe!r}{hint}"
            )
        _check_int("n_clusters", self.n_clusters, 1)
        if self.n_clusters > n_samples:
            raise ValueError(
                f"n_clusters: expected at most n_samples={n_samples} clusters, "
                f"got {self.n_clusters}"
            )
        _check_int("pretrain_epochs", self.pretrain_epochs, 0, auto=True)
        _check_int("patience", self.patience, 1, auto=True, none=True)
        _check_int("num_samples", self.num_samples, 1)
        _check_int("random_state", self.random_state, 0)
        _check_int("n_init", self.n_init, 1)
        extra = {} if self.recipe_kwargs is None else self.recipe_kwargs
        if not isinstance(extra, dict):
            raise ValueError(f"recipe_kwargs: expected a dict or None, got {type(extra).__name__}")
        hidden = self.hidden
        arguments = {
            "clusters": self.n_clusters,
            "latent_dim": self.latent_dim,
            "hidden": [_plain(h) for h in hidden] if isinstance(hidden, (list, tuple)) else hidden,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "pretrain_epochs": self.pretrain_epochs,
            "likelihood": self.likelihood,
            "binarize": self.binarize,
            "patience": self.patience,
            "seed": self.random_state,
            "split_seed": self.random_state,
        }
        clashes = sorted(set(extra) & (set(arguments) | {"data", "labels", "limit", "data_dir"}))
        if clashes:
            raise ValueError(
                f"recipe_kwargs: {clashes} are set by the estimator's own parameters or by X; "
                "pass them as parameters (clusters is n_clusters, seed is random_state)"
            )
        if "pretrain_epochs" not in get_recipe(self.recipe).defaults:
            if self.pretrain_epochs != "auto":
                raise ValueError(
                    f"pretrain_epochs: the {self.recipe} recipe has no pretraining; leave it 'auto'"
                )
            del arguments["pretrain_epochs"]
        chosen = {key: _plain(value) for key, value in arguments.items() if value != "auto"}
        return {**chosen, **extra}

    def _check_X(self, X, *, fitted: bool = True) -> np.ndarray:
        """X as a finite float32 (N, D) array, checked against what ``fit`` saw."""
        x = check_array(X, dtype=(np.float64, np.float32), input_name="X").astype(np.float32)
        if not fitted:
            return x
        check_is_fitted(self)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X: expected {self.n_features_in_} features, as in fit; got {x.shape[1]}"
            )
        if self.run_.args["likelihood"] == "bernoulli" and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                f"X: the Bernoulli likelihood needs values in [0, 1]; got min {x.min():g}, "
                f"max {x.max():g}"
            )
        return x

    def _tensor(self, X) -> torch.Tensor:
        return torch.as_tensor(self._check_X(X), device=self.run_.args["device"])

    def _batched(self, function, X) -> np.ndarray:
        """``function`` applied to ``X`` in chunks of ``BATCH_SIZE`` points, as one numpy array."""
        x = self._tensor(X)
        with torch.no_grad(), eval_mode(self.run_.model, self.run_.guide):
            return torch.cat([function(chunk) for chunk in x.split(BATCH_SIZE)]).cpu().numpy()

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Draw from torch RNGs seeded by ``random_state``, restoring the global state after."""
        device = torch.device(self.run_.args["device"])
        cuda = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.random_state)
            yield


def _fit_split(x: np.ndarray, args: dict[str, Any]) -> Dataset:
    """``x`` split into train and a ``VAL_FRACTION`` validation split (also the test split),
    binarised as the recipe's resolved ``args`` say."""
    dataset = load_dataset(
        x,
        seed=args["split_seed"],
        binarize=args["binarize"],
        val_fraction=VAL_FRACTION,
        test_fraction=0.0,
    )
    return replace(dataset, test=dataset.val)

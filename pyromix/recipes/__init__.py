"""Named recipes: model + guide + objective + schedules + defaults, as data, in one registry.

A recipe is a :class:`Recipe` registered under a name with :func:`register_recipe`; the CLI
(``pyromix fit NAME``), :func:`pyromix.runs.train_recipe`, :func:`pyromix.runs.load_run`,
``pyromix compare`` and :class:`pyromix.estimators.MixtureClustering` all look it up with
:func:`get_recipe`. The shipped recipes live one family per module here and are built only from
the public building blocks below, exactly as a plugin's would be:

- ``arguments``: the typed arguments every recipe shares (:data:`COMMON_ARGUMENTS`), a recipe's
  whole schema (:func:`recipe_schema`) and the docs' table of them (:func:`arguments_table`);
- ``blocks``: :data:`COMMON_DEFAULTS`, :func:`build_body`, :func:`build_encoder`,
  :func:`build_likelihood`, and the objective builders :func:`elbo_objective`,
  :func:`iwae_objective`, :func:`enum_objective`, :func:`vimco_objective`;
- ``mixture``: :func:`build_mixture_model`, :func:`build_mixture`, :func:`mixture_recipe`,
  :func:`pretrain_mixture` (autoencoder + GMM initialisation), :func:`std_annealing`;
- ``registry``: :class:`Recipe`, the registry, and plugin discovery (``--plugin MODULE``,
  ``FILE.py:NAME``, entry points in the group ``pyromix.recipes``).

Example:
    >>> from pyromix.recipes import RECIPES, get_recipe
    >>> get_recipe("gmvae") is RECIPES["gmvae"], "clusters" in RECIPES["gmvae"].defaults
    (True, True)
"""

from . import arguments, blocks, registry
from .arguments import (
    CLUSTERS,
    LEVELS,
    arguments_table,
    common_argument,
    recipe_schema,
    resolve_clusters,
)
from .blocks import (
    build_body,
    build_encoder,
    build_likelihood,
    check_choice,
    check_flows,
    elbo_objective,
    enum_objective,
    iwae_objective,
    vimco_objective,
)
from .registry import (
    Recipe,
    RecipeNotFoundError,
    available_recipes,
    get_recipe,
    is_recipe_file,
    load_plugin,
    load_recipe_file,
    recipe_origin,
    register_recipe,
    resolve_recipe,
    unregister_recipe,
)

# The shipped families register themselves on import, in the order ``pyromix list`` shows.
from . import vae, flow, gan, learned_priors, mixture, cpvae, mvae, implicit  # noqa: E402, F401, I001
from . import semisupervised  # noqa: E402, F401
from .mixture import (  # noqa: E402
    build_mixture,
    build_mixture_model,
    mixture_recipe,
    pretrain_mixture,
    std_annealing,
)

# The data below is bound here again, with its doc comment, for the API reference.

#: Every registered recipe by name, which ``pyromix fit NAME`` and :func:`get_recipe` look up.
RECIPES = registry.RECIPES
#: The entry-point group in which installed distributions announce recipes.
ENTRY_POINT_GROUP = registry.ENTRY_POINT_GROUP
#: The typed training, network, likelihood and data arguments of every recipe.
COMMON_ARGUMENTS = arguments.COMMON_ARGUMENTS
#: Arguments of several families, typed and resolved from the data wherever a recipe has them.
SHARED_ARGUMENTS = arguments.SHARED_ARGUMENTS
#: The defaults of :data:`COMMON_ARGUMENTS` (a recipe's own defaults win).
COMMON_DEFAULTS = blocks.COMMON_DEFAULTS
#: The Gaussian-mixture family's typed arguments (clusters, std annealing, AE + GMM pretraining).
MIXTURE_ARGUMENTS = mixture.MIXTURE_ARGUMENTS
#: The defaults of :data:`MIXTURE_ARGUMENTS`.
MIXTURE_DEFAULTS = mixture.MIXTURE_DEFAULTS
#: The MVAE recipes' arguments (hard or soft optimisation, and the beta schedule).
MVAE_DEFAULTS = mvae.MVAE_DEFAULTS
#: The beta schedules of the MVAE recipes.
BETA_SCHEDULES = mvae.BETA_SCHEDULES
#: The VAE's flow options (``guide`` gaussian or iaf, ``prior`` normal or flow, ``flows``).
VAE_FLOW_DEFAULTS = vae.VAE_FLOW_DEFAULTS
#: The flow density model's arguments.
FLOW_DEFAULTS = flow.FLOW_DEFAULTS
#: The GAN's arguments, at Soons (2020)'s settings (2.3).
GAN_DEFAULTS = gan.GAN_DEFAULTS

__all__ = [
    "Recipe",
    "RECIPES",
    "ENTRY_POINT_GROUP",
    "RecipeNotFoundError",
    "register_recipe",
    "unregister_recipe",
    "get_recipe",
    "recipe_origin",
    "available_recipes",
    "load_plugin",
    "load_recipe_file",
    "is_recipe_file",
    "resolve_recipe",
    "COMMON_ARGUMENTS",
    "COMMON_DEFAULTS",
    "CLUSTERS",
    "LEVELS",
    "SHARED_ARGUMENTS",
    "common_argument",
    "recipe_schema",
    "resolve_clusters",
    "arguments_table",
    "MIXTURE_ARGUMENTS",
    "MIXTURE_DEFAULTS",
    "MVAE_DEFAULTS",
    "BETA_SCHEDULES",
    "VAE_FLOW_DEFAULTS",
    "FLOW_DEFAULTS",
    "GAN_DEFAULTS",
    "check_choice",
    "check_flows",
    "build_body",
    "build_encoder",
    "build_likelihood",
    "build_mixture_model",
    "build_mixture",
    "mixture_recipe",
    "pretrain_mixture",
    "std_annealing",
    "elbo_objective",
    "iwae_objective",
    "enum_objective",
    "vimco_objective",
]

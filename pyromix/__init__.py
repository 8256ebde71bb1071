"""pyromix: mixture-prior and learned-prior variational autoencoders as Pyro programs."""

import os
import sys
from typing import Any

try:
    import pyro
except KeyboardInterrupt:  # Ctrl-C while the `pyromix` command starts: one line, status 130
    if os.path.basename(sys.argv[0]) != "pyromix":
        raise
    sys.stderr.write("pyromix: interrupted\n")
    raise SystemExit(130) from None

# Parameters live in their PyroModules rather than in Pyro's global param store: a model's
# ``decoder.*`` and a guide's or a second model's identically named parameters would otherwise
# share one store entry. It is also what a plain torch optimiser over ``module.parameters()``
# needs, which is how :func:`pyromix.train.fit` trains and checkpoints.
pyro.settings.set(module_local_params=True)

__version__ = "0.1.0"
__all__ = ["__version__", "register_recipe", "Recipe"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the recipes import the models, which import this package.
    if name in ("register_recipe", "Recipe"):
        from . import recipes

        return getattr(recipes, name)
    raise AttributeError(f"module 'pyromix' has no attribute {name!r}")

"""pyromix: mixture-prior and learned-prior variational autoencoders as Pyro programs."""

import os
import sys
from typing import Any

try:  # the slow import first, so a Ctrl-C during it is one line (pyro is not used here)
    import pyro  # noqa: F401
except KeyboardInterrupt:  # Ctrl-C while the `pyromix` command starts: one line, status 130
    if os.path.basename(sys.argv[0]) != "pyromix":
        raise
    sys.stderr.write("pyromix: interrupted\n")
    raise SystemExit(130) from None

# No global setting of Pyro or torch changes here: pyromix's programs keep their parameters in
# their modules by themselves (pyromix.local_params).
__version__ = "0.1.0"
__all__ = ["__version__", "register_recipe", "Recipe"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the recipes import the models, which import this package.
    if name in ("register_recipe", "Recipe"):
        from . import recipes

        return getattr(recipes, name)
    raise AttributeError(f"module 'pyromix' has no attribute {name!r}")

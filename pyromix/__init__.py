"""pyromix: mixture-prior and learned-prior variational autoencoders as Pyro programs."""

import os
import sys

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
__all__ = ["__version__"]

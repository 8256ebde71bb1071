"""Site and plate names shared by every model and guide, defined once.

A guide pairs with any model whose latent sites it covers because both use these names.
"""

__all__ = ["DATA_PLATE", "X", "Y", "Z"]

DATA_PLATE = "data"
X = "x"
Y = "y"
Z = "z"

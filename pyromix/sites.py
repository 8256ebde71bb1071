"""Site and plate names shared by every model and guide, defined once.

A guide pairs with any model whose latent sites it covers because both use these names.
"""

__all__ = ["DATA_PLATE", "U", "X", "Y", "Z", "Z1", "Z2"]

DATA_PLATE = "data"
X = "x"
Y = "y"
Z = "z"
# the hierarchical VAE's two latent levels (z1 next to x) and a flow's dequantisation noise
Z1 = "z1"
Z2 = "z2"
U = "u"

import pyro
import pytest
import torch

# The test networks are tiny: one intra-op thread is as fast and far steadier when cores are shared.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same RNG state and an empty param store."""
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()

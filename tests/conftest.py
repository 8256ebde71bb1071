import os

import pyro
import pytest
import torch

# Tests run on whatever the CI machine has: keep torch from oversubscribing 2 cores.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same RNG state and an empty param store."""
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()

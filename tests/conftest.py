import sys

import pytest
import torch

# small models run fastest single-threaded on these shared 2-core machines
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test leaves open: pyplot keeps them, and past 20 it warns (an error in this suite)."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")

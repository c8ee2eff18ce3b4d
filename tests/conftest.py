import sys

import pytest
import torch

# small models run fastest single-threaded on these shared 2-core machines
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def close_figures():
    """Close the figures a test drew: pyplot keeps every open figure alive, so they would pile up
    across tests (and matplotlib warns past 20). Tests that never plot do not import matplotlib."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")

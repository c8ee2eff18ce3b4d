"""Device-clean steps: no tensor of a search step is created off the model's device by accident.

Only a CPU is at hand, so the test turns the bug into something a CPU run shows: inside each step,
torch's default device is `meta` (`with torch.device("meta")`) while the model and the batches stay
on the CPU. A factory call that names no device (`torch.zeros(n)`, `torch.tensor(...)`), which on a
CUDA run would put a tensor on the CPU, then creates a meta tensor, and a dispatch mode records
every op that output one. Code that draws on the host on purpose (an index read back at once) says
so with `device="cpu"` and passes.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from search import fit_supernet
from search.bilevel_search import BilevelSearch
from search.loaders import search_loaders
from search.strategies import STRATEGIES
from supernet import SoftmaxMixture

from helpers import threshold_data, resume_space


class OffDevice(TorchDispatchMode):
    """Records (op, where) of every op that outputs a tensor off `device`."""

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        self.device = device
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.device.type != self.device for t in tree_flatten(out)[0]):
            self.found.append(str(func))
        return out


@pytest.fixture
def audited_steps(monkeypatch):
    """Every `BilevelSearch.train_step` runs with the default device meta, under OffDevice."""
    found: list[str] = []
    step = BilevelSearch.train_step

    def audited(self, *args):
        mode = OffDevice()
        try:
            with torch.device("meta"), mode:
                return step(self, *args)
        finally:
            found.extend(mode.found)

    monkeypatch.setattr(BilevelSearch, "train_step", audited)
    return found


def search(strategy="darts", **overrides):
    settings = dict(epochs=1, batch_size=16, seed=0, progress=False, on_undecided="ignore")
    if strategy not in ("spos", "fairnas"):  # the cost term steers the architecture, which these do not learn
        settings.update(cost="params", cost_weight=0.1)
    settings.update(overrides)
    return fit_supernet(resume_space(), threshold_data(), strategy=strategy, **settings)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategys_step_creates_its_tensors_on_the_models_device(audited_steps, strategy):
    search(strategy)
    assert audited_steps == []


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_steps_are_device_clean(audited_steps, precision):
    search(precision=precision, max_bad_steps=3)
    assert audited_steps == []


class HostWeights(SoftmaxMixture):
    """The bug the audit is for: mixing weights built with a factory call that names no device."""

    def weights(self, alpha, training, sid=None, phase=None):
        weights, run = super().weights(alpha, training, sid, phase)
        return weights + torch.zeros(len(alpha)), run


def test_the_audit_catches_a_factory_call_without_a_device(audited_steps, monkeypatch):
    from search.strategies.darts import DARTS

    monkeypatch.setattr(DARTS, "mixture", lambda self: HostWeights())
    with pytest.raises((RuntimeError, NotImplementedError)):  # meta meets the CPU: the step cannot run
        search("darts")
    assert "aten.zeros.default" in audited_steps


def test_search_loaders_pin_memory_on_request():
    pinned = search_loaders(threshold_data(), None, 16, 0, pin_memory=True)
    assert pinned.train.pin_memory and pinned.val.pin_memory
    plain = search_loaders(threshold_data(), None, 16, 0)
    assert not plain.train.pin_memory

"""Perturbation-based selection (DARTS-PT): each choice takes the option whose removal hurts most."""

import warnings

import pytest
import torch

from ops import Flatten, Identity, Zero, linear
from search import SearchResult, fit_supernet
from search.connectivity import is_connected
from search.perturbation import PerturbationSelection, PerturbationSettings, removed
from search.strategies import DARTS
from supernet import ChoiceOp, Op, SupernetExecutor, Tensor, search_space

from helpers import value_space


ZERO, ROLL, IDENTITY = range(3)
EPOCHS = 6


class Roll(Op):
    """Every sample gets the previous sample's input, damped: data flows, but nothing about its own label."""

    def _forward_implementation(self, x):
        return 0.1 * torch.roll(x, 1, dims=0)


def make_space():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        h = ChoiceOp(Zero(), Roll(), Identity(), names=["none", "roll", "identity"])(x)
        return linear(Flatten()(h), 3)

    return space(x)


def make_data(n=192, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 16, generator=g)
    y = x[:, 0, :3].argmax(1)  # balanced classes that a linear map of x separates
    return x, y


def search(selection="perturbation", space=None, **overrides):
    # no architecture step at all: the alphas stay uniform, so the argmax says nothing (the first
    # option, none, repaired to the first connected one, roll) and only the measurement can decide
    settings = dict(
        strategy=DARTS(warmup_epochs=EPOCHS),
        epochs=EPOCHS,
        batch_size=16,
        seed=1,
        progress=False,
        on_undecided="ignore",
        selection=selection,
        optim={"weight_lr": 0.05},
    )
    settings.update(overrides)
    space = space if space is not None else make_space()
    return space, fit_supernet(space, make_data(), make_data(96, seed=6), **settings)


@pytest.fixture(scope="module")
def searched():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the argmax run's dead-network repair
        space, result = search()
        _, argmax = search("argmax")
    return space, result, argmax


def test_perturbation_picks_the_option_that_matters_where_the_argmax_does_not(searched):
    space, result, argmax = searched
    (sid,) = result.architecture
    assert argmax.architecture[sid] == ROLL  # uniform alphas: none, repaired to the first connected option
    assert result.architecture[sid] == IDENTITY
    entry = result.perturbation[sid]
    assert entry["option"] == "identity" and entry["position"] == IDENTITY and entry["order"] == 0
    drops = entry["drops"]
    assert all(isinstance(d, float) for d in drops) and len(drops) == 3
    assert drops[IDENTITY] > 0.2 and drops[IDENTITY] == max(drops)
    assert result.config["selection"] == {"mode": "perturbation", **vars(PerturbationSettings())}
    assert argmax.config["selection"] == {"mode": "argmax"} and argmax.perturbation == {}


def trained_supernet(space, result):
    supernet = SupernetExecutor(space, mixture=DARTS().mixture(), seed=0)
    supernet.load_state_dict(result.supernet_state)
    return supernet


def test_masking_an_option_changes_the_output_and_removing_none_barely_matters(searched):
    space, result, _ = searched
    supernet = trained_supernet(space, result).eval()
    (sid,) = result.architecture
    x, y = make_data(96, seed=6)
    uniform = torch.full((3,), 1 / 3)
    with torch.no_grad():
        plain = supernet(x)
        with supernet.overridden_weights({sid: uniform}):
            assert torch.allclose(supernet(x), plain, atol=1e-6)  # the mixture's own weights
        with supernet.overridden_weights({sid: removed(uniform, IDENTITY)}):
            without_identity = supernet(x)
        with supernet.overridden_weights({sid: removed(uniform, ZERO)}):
            without_none = supernet(x)
        after = supernet(x)
    assert torch.equal(after, plain)  # the override ends with its block
    assert torch.allclose(without_none, 1.5 * plain - 0.5 * supernet.state_dict()[_bias(supernet)], atol=1e-4)

    def accuracy(logits):
        return float((logits.argmax(1) == y).float().mean())

    assert accuracy(plain) - accuracy(without_identity) > 0.2
    assert abs(accuracy(plain) - accuracy(without_none)) < 0.05
    # the selection measured the same: none's removal costs next to nothing, identity's a lot
    drops = result.perturbation[sid]["drops"]
    assert abs(drops[ZERO]) < 0.05 < 0.2 < drops[IDENTITY]


def _bias(supernet):
    (name,) = [k for k in supernet.state_dict() if k.endswith("bias")]
    return name


def test_removed_renormalises_and_overridden_weights_checks_its_input(searched):
    assert torch.allclose(removed(torch.tensor([0.5, 0.3, 0.2]), 0), torch.tensor([0.0, 0.6, 0.4]))
    assert torch.equal(removed(torch.tensor([0.0, 1.0]), 1), torch.zeros(2))
    space, result, _ = searched
    supernet = trained_supernet(space, result)
    (sid,) = result.architecture
    with pytest.raises(KeyError, match="unknown switch"):
        with supernet.overridden_weights({"nope": [1.0]}):
            pass
    with pytest.raises(ValueError, match="expected 3 weights"):
        with supernet.overridden_weights({sid: [1.0, 0.0]}):
            pass


def test_same_seed_same_selection(searched):
    _, result, _ = searched
    _, again = search()
    assert again.architecture == result.architecture
    assert again.perturbation == result.perturbation
    assert again == result


def test_bad_selection_values_and_strategies_that_learn_no_architecture_are_refused():
    space, (x, y) = make_space(), make_data()
    with pytest.raises(ValueError, match="selection must be one of"):
        fit_supernet(space, (x, y), epochs=1, progress=False, selection="best")
    for name in ("spos", "fairnas"):
        with pytest.raises(ValueError, match=f"strategy '{name}' learns no architecture"):
            fit_supernet(space, (x, y), strategy=name, epochs=1, progress=False, selection="perturbation")
    with pytest.raises(ValueError, match="pass selection='perturbation'"):
        fit_supernet(space, (x, y), epochs=1, progress=False, perturbation={"batches": 2})
    with pytest.raises(ValueError, match="batches must be a positive int"):
        fit_supernet(space, (x, y), epochs=1, progress=False, selection="perturbation", perturbation={"batches": 0})
    with pytest.raises(ValueError, match="unknown setting"):
        fit_supernet(space, (x, y), epochs=1, progress=False, selection="perturbation", perturbation={"steps": 2})


def test_the_drops_round_trip_through_save_and_load_and_show_in_the_summary(searched, tmp_path):
    space, result, _ = searched
    loaded = SearchResult.load(result.save(tmp_path / "r"), space=space)
    assert loaded.perturbation == result.perturbation and loaded == result
    text = result.summary()
    assert "perturbation selection" in text and "*identity" in text
    assert f"{result.perturbation[next(iter(result.perturbation))]['drops'][IDENTITY]:+.4f}" in text


def test_a_dead_perturbation_selection_is_repaired(monkeypatch):
    def all_none(self):
        return {sid: 0 for sid in self.supernet.alphas}, {}

    monkeypatch.setattr(PerturbationSelection, "select", all_none)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        space, result = search(epochs=1, strategy=DARTS(warmup_epochs=1))
    assert is_connected(space, result.architecture)
    assert any("perturbation selection leaves the network without a path" in str(w.message) for w in caught)


def test_fine_tuning_between_decisions_leaves_the_searched_weights_as_they_were():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def two_choices(x):
        h = ChoiceOp(Zero(), Roll(), Identity(), names=["none", "roll", "identity"])(x)
        h = ChoiceOp(Identity(), Roll(), names=["identity", "roll"])(h)
        return linear(Flatten()(h), 3)

    _, tuned = search(space=two_choices(x), perturbation={"fine_tune_steps": 3, "batches": 2})
    with pytest.warns(RuntimeWarning, match="dead network"):  # uniform alphas: the argmax is none, repaired
        _, argmax = search("argmax", space=two_choices(x))
    assert all(torch.equal(tuned.supernet_state[k], v) for k, v in argmax.supernet_state.items())
    assert sorted(e["order"] for e in tuned.perturbation.values()) == [0, 1]
    assert sorted(tuned.architecture.values()) == [0, IDENTITY]  # identity twice (index 0 of the second)
    first = min(tuned.perturbation.values(), key=lambda e: e["order"])
    assert first["position"] == first["drops"].index(max(first["drops"]))


def test_value_choices_are_measured_like_switches():
    net, kernel, width = value_space()
    result = fit_supernet(
        net,
        make_data(),
        epochs=1,
        batch_size=16,
        seed=0,
        progress=False,
        on_undecided="ignore",
        selection="perturbation",
        perturbation={"batches": 2},
    )
    assert set(result.perturbation) == set(result.probabilities) >= {kernel.id, width.id}
    for pid in (kernel.id, width.id):
        assert result.architecture[pid] in result.option_values[pid]
        assert len(result.perturbation[pid]["drops"]) == len(result.option_values[pid])
    supernet = SupernetExecutor(net, seed=0).eval()
    x = make_data()[0][:8]
    with torch.no_grad():
        plain = supernet(x)
        with supernet.overridden_weights({width.id: removed(torch.full((3,), 1 / 3), 2)}):
            narrower = supernet(x)
    assert not torch.allclose(plain, narrower)  # the widest value removed: the mask of width 6 is gone

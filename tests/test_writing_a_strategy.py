"""The "Writing a strategy" example of docs/strategies.md (once the README's), run exactly as
written: it searches, its schedule reaches the mixture, its state is checkpointed and a resumed
search is bit-identical."""

import functools
import re
import warnings
from pathlib import Path

import pytest
import torch

from ops import AvgPooling, Flatten, Identity, MaxPooling, conv1d, linear
from search import fit_supernet
from search.confidence import UndecidedWarning
from supernet import ChoiceOp, SupernetExecutor, Tensor, search_space

from helpers import threshold_data

PAGE = Path(__file__).resolve().parents[1] / "docs" / "strategies.md"


def page_example() -> str:
    """The first python block of the page's "Writing a strategy" section."""
    text = PAGE.read_text()
    section = text[text.index("## Writing a strategy") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def EntropyDARTS():
    namespace: dict = {}
    exec(compile(page_example(), "docs/strategies.md (Writing a strategy)", "exec"), namespace)
    return namespace["EntropyDARTS"]


def space():
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))

    @search_space
    def build(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=3), MaxPooling(3, 1, 1), Identity())(x)
        h = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=3), AvgPooling(3, 1, 1))(h)
        return linear(Flatten()(h), 3)

    return build(x)


def search(strategy, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndecidedWarning)
        return fit_supernet(
            space(),
            threshold_data(64, length=8, seed=2, window=3),
            strategy=strategy,
            epochs=3,
            batch_size=16,
            seed=0,
            progress=False,
            optim={"arch_lr": 3e-2},
            **settings,
        )


def test_the_readme_example_is_about_thirty_lines():
    assert 25 <= len([line for line in page_example().splitlines() if line.strip()]) <= 40


def test_the_example_strategy_searches_with_its_schedule_and_regulariser(EntropyDARTS):
    strategy = EntropyDARTS(final_temperature=0.5, max_weight=0.1)
    supernet = SupernetExecutor(space(), mixture=strategy.mixture(), seed=0)
    strategy.on_epoch_start(2, 3, supernet)
    assert supernet.mixture.temperature == pytest.approx(0.5) and strategy.weight == pytest.approx(0.1)
    with torch.no_grad():
        penalty = float(strategy.regularizer(supernet))
    assert penalty == pytest.approx(
        0.1 * torch.log(torch.tensor(3.0)).item() / 2 + 0.1 * torch.log(torch.tensor(2.0)).item() / 2, rel=1e-5
    )
    result = search(EntropyDARTS())
    assert result.config["strategy"] == {
        "name": "entropy-darts",
        "warmup_epochs": 0,
        "temperature": 1.0,
        "final_temperature": 0.5,
        "max_weight": 0.1,
    }
    assert set(result.architecture) == set(result.probabilities) and len(result.architecture) == 2
    assert result != search("darts")  # its regulariser and schedule changed the search


def test_the_example_strategy_resumes_bit_identically(EntropyDARTS, tmp_path):
    uninterrupted = search(EntropyDARTS())

    class Crash(Exception):
        pass

    def crash(state):
        if state["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        search(EntropyDARTS(), checkpoint_dir=tmp_path, callbacks=[crash])
    saved = torch.load(sorted(tmp_path.iterdir())[-1], weights_only=True)
    assert saved["strategy"] == {"temperature": 1.0, "weight": pytest.approx(0.1 / 3)}
    assert search(EntropyDARTS(), checkpoint_dir=tmp_path, resume=True) == uninterrupted

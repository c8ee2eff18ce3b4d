"""A search's result depends only on its arguments: two searches in two threads at once, with the
same seed, return what each returns alone (search.generators: each search draws from generators of
its own, never from torch's global one)."""

import functools
import threading

import pytest
import torch

from ops import AvgPooling, BatchNorm, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from search import fit_supernet
from search.generators import SearchGenerators

from supernet import ChoiceOp, Tensor, search_space

SEED = 5
LENGTHS = (12, 10)  # two separate spaces


def small_space(length: int, channels: int = 2):
    """Two choices, no dropout (dropout draws from torch's global generator: see docs/data.md)."""
    x = Tensor("x", (1, channels, length), ("N", "C", "L"))

    @search_space
    def space(x):
        conv3 = functools.partial(conv1d, out_channels=channels, kernel_size=3)
        h = ChoiceOp(conv3, MaxPooling(3, 1, 1), Identity())(x)
        h = Relu()(BatchNorm()(h))
        h = ChoiceOp(functools.partial(conv1d, out_channels=channels, kernel_size=5), AvgPooling(3, 1, 1))(h)
        return linear(Flatten()(h), 3)

    return space(x)


def data(length: int):
    g = torch.Generator().manual_seed(length)
    x = torch.randn(48, 2, length, generator=g)
    return x, (x[:, 0, :4].sum(dim=1) > 0).long() + (x[:, 1, :4].sum(dim=1) > 1).long()


def search(length: int, strategy: str, callbacks=()):
    return fit_supernet(
        small_space(length),
        data(length),
        strategy=strategy,
        epochs=3,
        batch_size=12,
        seed=SEED,
        progress=False,
        on_undecided="ignore",
        optim={"arch_lr": 3e-2},
        callbacks=list(callbacks),
    )


class Turns:
    """Makes two threads take turns, one epoch each: every draw of one search falls between draws
    of the other, so a search reading a shared generator cannot come out as it does alone."""

    def __init__(self) -> None:
        self.turn, self.done = 0, [False, False]
        self.condition = threading.Condition()

    def wait(self, me: int) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.turn == me or self.done[1 - me], timeout=60)

    def pass_on(self, me: int) -> None:
        with self.condition:
            self.turn = 1 - me
            self.condition.notify_all()
        self.wait(me)

    def finish(self, me: int) -> None:
        with self.condition:
            self.done[me], self.turn = True, 1 - me
            self.condition.notify_all()


def in_threads(strategy: str, turns: bool):
    results, errors = [None, None], []
    order = Turns()

    def run(me: int, length: int) -> None:
        try:
            if turns:
                order.wait(me)
            callbacks = [lambda state: order.pass_on(me)] if turns else []
            results[me] = search(length, strategy, callbacks)
        except BaseException as err:  # reported in the main thread
            errors.append(err)
        finally:
            order.finish(me)

    threads = [threading.Thread(target=run, args=(me, length)) for me, length in enumerate(LENGTHS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def alone():
    return {strategy: [search(length, strategy) for length in LENGTHS] for strategy in ("gdas", "darts")}


@pytest.mark.parametrize("strategy", ["gdas", "darts"])
@pytest.mark.parametrize("turns", [True, False], ids=["taking-turns", "free-running"])
def test_two_searches_in_threads_equal_each_search_alone(alone, strategy, turns):
    threaded = in_threads(strategy, turns)
    for mine, reference in zip(threaded, alone[strategy]):
        assert mine.architecture == reference.architecture
        assert mine.chosen_options == reference.chosen_options
        assert mine.probabilities == reference.probabilities
        assert mine == reference  # weights, history and metrics too, bit for bit


def test_a_search_ignores_draws_from_the_global_generator_between_its_steps(alone):
    def disturb(state):  # other code in the process drawing from torch's global generator
        torch.rand(100)

    assert search(LENGTHS[0], "gdas", [disturb]) == alone["gdas"][0]


def test_generators_restart_from_their_state():
    generators = SearchGenerators(SEED)
    first = torch.rand(4, generator=generators(torch.device("cpu")))
    state = generators.state_dict()
    after = torch.rand(4, generator=generators(torch.device("cpu")))
    again = SearchGenerators(SEED)
    assert torch.equal(torch.rand(4, generator=again(torch.device("cpu"))), first)
    again.load_state_dict(state)
    assert torch.equal(torch.rand(4, generator=again(torch.device("cpu"))), after)


def test_spaces_built_at_once_in_two_threads_get_the_ids_they_get_alone():
    meeting = threading.Barrier(2, timeout=30)
    built = [None, None]

    def build(me: int) -> None:
        x = Tensor("x", (1, 2, 8), ("N", "C", "L"))

        @search_space
        def space(x):
            meeting.wait()  # both threads inside their scope at once
            h = ChoiceOp(MaxPooling(3, 1, 1), Identity())(x)
            meeting.wait()
            return Relu()(h)

        built[me] = space(x)

    threads = [threading.Thread(target=build, args=(me,)) for me in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [node.id for node in built] == ["space_0.Relu_0", "space_0.Relu_0"]

"""pareto_front records each prediction's spread over the table's rounds, re-measures the exported
models with the table's protocol, and says when a re-measurement exceeds its target (issue 27, item 10)."""

import functools

import pytest
import torch

from ops import AdaptiveAvgPooling, Flatten, Identity, MaxPooling, conv1d, linear
from search import pareto_front, plot_pareto
from search.pareto import MEASURED_SPREAD_LABEL, PREDICTED_LABEL, OverTargetWarning, table_protocol
from supernet import ChoiceOp, Tensor, discretize, search_space
from supernet.latency import LatencyTable, MeasureSettings

PROTOCOL = MeasureSettings(rounds=3, block_seconds=1e-5, calibration=0)


def space():
    @search_space
    def net(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=4, kernel_size=5), MaxPooling(3, 1, 1), Identity())(x)
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 3)

    return net(Tensor("x", (1, 4, 16), ("N", "C", "L")))


def test_table_records_the_spread_of_its_rounds_and_keeps_it_in_its_file(tmp_path):
    net = space()
    table = LatencyTable.measure(net, progress=False, settings=PROTOCOL)
    assert table.spreads.keys() == table.entries.keys()
    assert all(low <= table.entries[k] <= high for k, (low, high) in table.spreads.items())
    fixed = discretize(net, {next(iter(net.parametrization())): 0})
    low, high = table.predict_spread(fixed)
    assert low <= table.predict(fixed) <= high
    loaded = LatencyTable.load(table.save(tmp_path / "t.json"))
    assert loaded == table and loaded.predict_spread(fixed) == (low, high)
    assert table_protocol(table) == PROTOCOL
    assert LatencyTable(table.key, table.entries).predict_spread(fixed) is None  # an older table: no spreads


def test_pareto_front_reports_prediction_and_re_measurement_and_says_when_over_target(tmp_path):
    net = space()
    table = LatencyTable.measure(net, progress=False, settings=PROTOCOL)
    g = torch.Generator().manual_seed(0)
    data = torch.randn(32, 4, 16, generator=g), torch.randint(0, 3, (32,), generator=g)
    unreachable = pytest.warns(RuntimeWarning, match="no architecture reachable .* costs at most the cost_target 1e-09")
    over = pytest.warns(OverTargetWarning, match=r"1 pick\(s\) of pareto_front re-measure over .*target 1e-09 ms")
    with unreachable, over:
        tight, generous = pareto_front(
            net,
            data,
            targets=[1e-9, 1e9],
            epochs=1,
            latency_table=table,
            seed=0,
            batch_size=16,
            on_undecided="ignore",
            progress=False,
            strategy="darts",
        )
    for result in (tight, generous):
        config = result.config
        low, high = config["predicted_latency_spread_ms"]
        assert low <= config["predicted_latency_ms"] <= high
        low, high = config["measured_latency_spread_ms"]
        assert 0 < low <= config["measured_latency_ms"] <= high
        assert config["measure_rounds"] == PROTOCOL.rounds  # the table's protocol
    assert tight.config["measured_over_target"] and not generous.config["measured_over_target"]
    figure = plot_pareto([tight, generous], tmp_path / "front.png", accuracy=[0.5, 0.6])
    (ax,) = figure.axes
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["T=1e-09 ms (re-measured over T)", "T=1e+09 ms"]
    assert [c.get_label() for c in ax.containers] == [MEASURED_SPREAD_LABEL, PREDICTED_LABEL, "_", "_"]
    assert (tmp_path / "front.png").stat().st_size > 1000
    # the point is the protocol's quantile, possibly below the lower quartile (the latency notebook's minimum):
    # the bars still span exactly the quartiles
    tight.config["measured_latency_ms"] = tight.config["measured_latency_spread_ms"][0] / 2
    (ax,) = plot_pareto([tight], accuracy=[0.5]).axes
    (segments,) = ax.containers[0].lines[2]
    xs = segments.get_segments()[0][:, 0]
    assert list(xs) == pytest.approx(tight.config["measured_latency_spread_ms"])
    with pytest.raises(ValueError, match="over_target"):
        pareto_front(net, data, targets=[1.0], epochs=1, latency_table=table, over_target="shout")

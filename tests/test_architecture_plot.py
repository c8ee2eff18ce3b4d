"""Op-graph diagrams tell options apart and lay long chains out in columns (issue 27, item 7)."""

from ops import Flatten, Relu, conv1d, linear
from search.architecture_plot import MIN_LAYERS_PER_COLUMN, op_graph
from supernet import Tensor, search_space


def chain(depth, kernel=3, stride=1):
    @search_space
    def net(x):
        h = x
        for _ in range(depth):
            h = Relu()(conv1d(h, 4, kernel, stride=stride))
        return linear(Flatten()(h), 2)

    return net(Tensor("x", (1, 2, 64), ("N", "C", "L")))


def conv_labels(diagram):
    return [label for key, label in diagram.labels.items() if label.startswith("Conv1d")]


def test_convolutions_of_other_kernels_and_strides_are_labelled_apart():
    three, five = conv_labels(op_graph(chain(1, 3))), conv_labels(op_graph(chain(1, 5)))
    assert three != five
    assert "w 4×2×3" in three[0] and "w 4×2×5" in five[0]
    assert "s2" in conv_labels(op_graph(chain(1, 3, stride=2)))[0] and "s2" not in three[0]


def test_a_long_chain_wraps_into_columns_of_bounded_height():
    diagram = op_graph(chain(30))
    ys = [y for _, y in diagram.positions.values()]
    xs = sorted({round(x, 3) for x, _ in diagram.positions.values()})
    levels = round(max(ys) - min(ys)) + 1
    assert MIN_LAYERS_PER_COLUMN <= levels < 30 and len(xs) >= 3  # 60+ layers in several columns
    short = op_graph(chain(2))
    assert len({round(x, 3) for x, _ in short.positions.values()}) == 1  # a short chain stays one column

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


def test_darts_cells_number_nodes_as_the_ids_and_the_genotype_with_labels_clear_of_nodes(tmp_path):
    import math

    import matplotlib

    matplotlib.use("Agg")
    from search.architecture_plot import DARTS_NUMBERING, NODE_CLEARANCE, darts_cells, plot_architecture
    from search.spaces import darts_genotype, darts_genotype_tuple, darts_space, darts_switch_ids

    net = darts_space(Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W")), channels=4, layers=3)
    ids = darts_switch_ids(list(net.parametrization()))
    switches = [sid for edges in ids.values() for sid in edges.values()]
    probabilities = {sid: [0.1 + 0.01 * ((3 * n + 5 * k) % 7) for k in range(8)] for n, sid in enumerate(switches)}
    architecture = darts_genotype(probabilities)
    genotype = darts_genotype_tuple(architecture)
    normal, reduction = darts_cells(architecture, net)
    for diagram, genes, kind in ((normal, genotype.normal, "normal"), (reduction, genotype.reduce, "reduction")):
        assert [diagram.labels[str(j)] for j in range(2, 6)] == [
            "2",
            "3",
            "4",
            "5",
        ]  # as edge_<i>to<j> and the genotype
        assert diagram.tags == {"0": "0", "1": "1"} and diagram.note == DARTS_NUMBERING
        drawn = sorted((label, int(i), int(j)) for i, j, label in diagram.edges if label)
        # the genotype lists (op, input) node by node, two per node: nodes 2, 2, 3, 3, ...
        assert drawn == sorted((op, i, 2 + k // 2) for k, (op, i) in enumerate(genes))
        assert all(f".{kind}_cell_0.edge_{i}to{j}_0." in ids[kind][(i, j)] for _, i, j in drawn)
    figure = plot_architecture(type("R", (), {"architecture": architecture, "space": net})(), tmp_path / "cells.png")
    for ax, diagram in zip(figure.axes, (normal, reduction)):
        labels = [t for t in ax.texts if t.get_text() in {label for _, _, label in diagram.edges if label}]
        assert len(labels) == 8  # two inputs for each of the four nodes
        for text in labels:  # a label never sits on a node
            x, y = text.get_position()
            assert all(math.hypot(x - px, y - py) >= NODE_CLEARANCE for px, py in diagram.positions.values())
        spots = [t.get_position() for t in labels]
        assert all(math.hypot(a[0] - b[0], a[1] - b[1]) > 0.3 for k, a in enumerate(spots) for b in spots[k + 1 :])
    assert (tmp_path / "cells.png").stat().st_size > 5000

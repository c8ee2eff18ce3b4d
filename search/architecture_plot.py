"""Drawing the chosen architecture as a DAG, with matplotlib alone.

NB201 and DARTS searches are drawn as the cells of the papers' figures: the cell's nodes, and one
edge per chosen operation, labelled with it (`none` edges are left out, as in DARTS's genotype
plots); DARTS draws the normal and the reduction cell, with the cell inputs c_{k-2}, c_{k-1} and the
concatenated output c_{k}; untied NB201 cells are drawn once per distinct genotype. Any other space
is drawn as the op graph of its discretized architecture (inputs, one box per op with its output
shape, data edges). The cells are read with the spaces' own helpers (`darts_switch_ids`,
`cell_switches`); a space they do not recognise is drawn as its op graph.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from supernet import Node, lazy
from supernet.graph import get_nodes, topological_order
from supernet.node import Op, Tensor

from .spaces.darts import DARTS_OPS, NONE, darts_switch_ids
from .spaces.nb201 import NB201_EDGES, NB201_OPS, cell_switches


@dataclass
class Diagram:
    """A DAG to draw: node key -> position, label and kind ("input", "inner", "output", "op"),
    and edges (source, target, label)."""

    title: str
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    #: small texts beside nodes (node key -> text), e.g. the state number of a DARTS cell input
    tags: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def add(self, key: str, position: tuple[float, float], label: str, kind: str) -> None:
        self.positions[key], self.labels[key], self.kinds[key] = position, label, kind


def plot_architecture(result: Any, path: Union[str, Path, None] = None, space: Optional[Node] = None):
    """Draw the architecture `result` (a SearchResult) chose: NB201 or DARTS cells, else the op
    graph; `space` defaults to the result's. Saves to `path` if given; returns the figure."""
    space = space if space is not None else getattr(result, "space", None)
    diagrams = darts_cells(result.architecture, space) or nb201_cells(result.architecture, space)
    if not diagrams:
        if space is None:
            raise ValueError(
                "this result has no search space attached: pass space=, or SearchResult.load(path, space=...)"
            )
        diagrams = [op_graph(result.discretized(space))]
    figure = _draw(diagrams)
    if path is not None:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    return figure


def darts_cells(architecture: dict[str, Any], space: Optional[Node] = None) -> list[Diagram]:
    """The normal and reduction cells of a DARTS architecture (switch id -> option index), or []
    if it has no DARTS edge switch. `space` tells how many nodes the output concatenates (else all)."""
    cells = darts_switch_ids(list(architecture))
    diagrams = []
    for kind in ("normal", "reduction"):
        edges = cells.get(kind)
        if not edges:
            continue
        steps = max(j for _, j in edges) - 1
        concatenated = _darts_multiplier(space, kind) or steps
        diagram = Diagram(f"{kind} cell", note=DARTS_NUMBERING)
        # as DARTS's genotype plots: inputs on the left, the intermediate nodes in a column, the output on the right;
        # nodes are numbered as DARTS's states, the numbers of the switch ids (edge_<i>to<j>) and of the genotype
        diagram.add("0", (0.0, 1.2), "c_{k-2}", "input")
        diagram.add("1", (0.0, -1.2), "c_{k-1}", "input")
        diagram.tags.update({"0": "0", "1": "1"})
        for j in range(2, steps + 2):
            diagram.add(str(j), (3.2 + 1.2 * (j % 2), 1.6 * ((steps - 1) / 2 - (j - 2))), str(j), "inner")
        diagram.add("out", (6.6, 0.0), "c_{k}", "output")
        for (i, j), sid in sorted(edges.items(), key=lambda item: (item[0][1], item[0][0])):
            choice = int(architecture[sid])
            if choice != NONE:
                diagram.edges.append((str(i), str(j), DARTS_OPS[choice]))
        diagram.edges += [(str(j), "out", "") for j in range(steps + 2 - concatenated, steps + 2)]
        diagrams.append(diagram)
    return diagrams


def nb201_cells(architecture: dict[str, Any], space: Optional[Node]) -> list[Diagram]:
    """One NB201 cell per distinct genotype of an NB201 space's architecture (nodes 0..3, the
    edges i -> j labelled with their op), or [] if `space` has no NB201 cell."""
    if space is None:
        return []
    genotypes: list[tuple[str, ...]] = []
    for switches in cell_switches(space):
        ops = tuple(NB201_OPS[int(architecture.get(s.id, lazy(s)))] for s in switches)
        if ops not in genotypes:
            genotypes.append(ops)
    diagrams = []
    for number, ops in enumerate(genotypes):
        title = "cell" if len(genotypes) == 1 else f"cell genotype {number + 1} of {len(genotypes)}"
        diagram = Diagram(
            title
            + "\n"
            + "+".join(
                "|" + "|".join(f"{ops[NB201_EDGES.index((i, j))]}~{i}" for i in range(j)) + "|" for j in range(1, 4)
            )
        )
        for node in range(4):
            diagram.add(
                str(node), (2.2 * node, 0.0), str(node), "input" if node == 0 else "output" if node == 3 else "inner"
            )
        diagram.edges += [(str(i), str(j), op) for (i, j), op in zip(NB201_EDGES, ops) if op != "none"]
        diagrams.append(diagram)
    return diagrams


def op_graph(output: Node) -> Diagram:
    """The op graph of a fixed graph, in layers from the inputs (top) to the output (bottom)."""
    nodes = [n for n in topological_order(output) if not (isinstance(n, Tensor) and n.role == "weight")]
    layer: dict[int, int] = {}
    for node in nodes:
        data = [o for o in node.operands if id(o) in layer]
        layer[id(node)] = 1 + max((layer[id(o)] for o in data), default=-1)
    rows: dict[int, list[Node]] = {}
    for node in nodes:
        rows.setdefault(layer[id(node)], []).append(node)
    diagram = Diagram("op graph")
    # a long chain (a MobileNet is ~60 layers deep) wraps into columns instead of one tall strip
    per_column = max(MIN_LAYERS_PER_COLUMN, math.ceil(math.sqrt(3 * len(rows))))
    column_width = 2.2 * max(len(row) for row in rows.values()) + 1.5
    for depth, row in rows.items():
        column, level = divmod(depth, per_column)
        for k, node in enumerate(row):
            shape = "×".join(str(s) for s in lazy(node.shape())[1:])
            name = node.name if isinstance(node, Tensor) else type(node).__name__
            detail = _op_details(node) if isinstance(node, Op) else ""
            kind = "input" if isinstance(node, Tensor) else "output" if node is output else "op"
            position = (column * column_width + 2.2 * (k - (len(row) - 1) / 2), -float(level))
            diagram.add(node.id, position, "\n".join(t for t in (name, detail, shape) if t), kind)
    for node in nodes:
        diagram.edges += [(o.id, node.id, "") for o in node.operands if id(o) in layer]
    return diagram


MIN_LAYERS_PER_COLUMN = 12
#: attributes worth a label when not 1 (they tell options apart: conv3 from conv5, stride 1 from 2)
_SHOWN = {"kernel_size": "k", "stride": "s", "dilation": "d", "groups": "g", "heads": "heads", "num_heads": "heads"}


def _op_details(node: Op) -> str:
    """A short line of what distinguishes this op from others of its type: its weight's shape
    (the kernel of a convolution) and its stride, dilation, groups or heads when not 1."""
    parts = []
    weights = [t for t in node.operands if isinstance(t, Tensor) and t.owner is node and t.role == "weight"]
    if weights:
        parts.append("w " + "×".join(str(s) for s in lazy(weights[0].shape())))
    for key, short in _SHOWN.items():
        value = node.attributes.get(key)
        if value is None:
            continue
        value = lazy(value)
        if key == "kernel_size" or value not in (1, (1, 1), [1, 1]):
            parts.append(f"{short}{'×'.join(map(str, value)) if isinstance(value, (tuple, list)) else value}")
    return " ".join(parts)


#: how a DARTS cell diagram numbers its nodes (said under each cell)
DARTS_NUMBERING = (
    "nodes numbered as the switch ids (edge_<i>to<j>) and the genotype: 0 = c_{k-2}, 1 = c_{k-1}, "
    "2.. = the intermediate nodes (the paper's figure calls them 0..)"
)

_CONCAT = re.compile(r"(?:^|\.)(?P<kind>normal|reduction)_cell_\d+\.Concat_\d+$")


def _darts_multiplier(space: Optional[Node], kind: str) -> Optional[int]:
    """How many nodes the DARTS cells of `kind` concatenate into their output (None: unknown)."""
    if space is None:
        return None
    for node in get_nodes(space):
        match = _CONCAT.search(node.id) if isinstance(node, Op) else None
        if match and match["kind"] == kind:
            return len(node.operands)
    return 1  # a cell without Concat outputs its last node


_FILL = {"input": "#c6dbef", "inner": "#f0f0f0", "output": "#fdd0a2"}


def _colour(label: str) -> tuple[float, float, float]:
    """A light colour per op type, the same in every figure."""
    hue = int(hashlib.md5(label.split("\n")[0].encode()).hexdigest()[:4], 16) / 0xFFFF
    return colorsys.hls_to_rgb(hue, 0.85, 0.6)


def _draw(diagrams: list[Diagram]):
    import matplotlib.pyplot as plt  # imported when drawing: `import search` stays fast

    graph = diagrams[0].title == "op graph"
    inches = 0.75 if graph else 1.3  # per unit of the layout
    extents = []
    for d in diagrams:
        xs = [p[0] for p in d.positions.values()]
        ys = [p[1] for p in d.positions.values()]
        extents.append((max(xs) - min(xs) + 2.0, max(ys) - min(ys) + 2.0))
    width = max(5.0, min(30.0, max(w for w, _ in extents) * inches))
    heights = [max(2.5, min(150.0, h * inches + 0.5)) for _, h in extents]
    figure, axes = plt.subplots(
        len(diagrams), 1, figsize=(width, sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, diagram in zip(axes[:, 0], diagrams):
        _draw_diagram(ax, diagram, graph)
    return figure


def _near(point: tuple[float, float], a: tuple[float, float], b: tuple[float, float], distance: float) -> bool:
    """Whether `point` lies within `distance` of the segment a-b (not at its ends)."""
    (px, py), (ax, ay), (bx, by) = point, a, b
    length = (bx - ax) ** 2 + (by - ay) ** 2
    t = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / length if length else 0.0
    if not 0.05 < t < 0.95:
        return False
    return ((ax + t * (bx - ax) - px) ** 2 + (ay + t * (by - ay) - py) ** 2) ** 0.5 < distance


def _draw_diagram(ax: Any, diagram: Diagram, graph: bool) -> None:
    from matplotlib.patches import FancyArrowPatch

    ax.set_title(diagram.title, fontsize=10)
    ax.axis("off")
    xs = [p[0] for p in diagram.positions.values()]
    ys = [p[1] for p in diagram.positions.values()]
    margin = 1.5  # room for the arcs bent around nodes
    ax.set_xlim(min(xs) - margin, max(xs) + margin)
    ax.set_ylim(min(ys) - margin, max(ys) + margin)
    ax.set_aspect("equal", adjustable="box")  # arcs and their label positions agree in data units
    boxes = {}
    for key, (x, y) in diagram.positions.items():
        kind, label = diagram.kinds[key], diagram.labels[key]
        fill = _colour(label) if kind == "op" else _FILL[kind]
        style = "round,pad=0.3" if graph or kind != "inner" else "circle,pad=0.3"
        boxes[key] = ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=7 if graph else 10,
            zorder=3,
            bbox={"boxstyle": style, "facecolor": fill, "edgecolor": "#444444"},
        )
    for key, tag in diagram.tags.items():
        x, y = diagram.positions[key]
        ax.text(x - 0.75, y, tag, ha="right", va="center", fontsize=9, fontweight="bold", color="#08306b", zorder=3)
    if diagram.note:
        ax.text(0.5, -0.02, diagram.note, transform=ax.transAxes, ha="center", va="top", fontsize=7, color="0.35")
    bends, curves = 0, []
    for source, target, label in diagram.edges:
        start, end = diagram.positions[source], diagram.positions[target]
        blocked = any(_near(p, start, end, 0.45) for k, p in diagram.positions.items() if k not in (source, target))
        rad = 0.0
        if blocked:  # bend the edge around the nodes in its way, alternately to either side
            bends += 1
            rad = 0.3 if bends % 2 else -0.3
        curves.append((source, target, label, rad))
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                patchA=boxes[source],
                patchB=boxes[target],
                arrowstyle="-|>",
                mutation_scale=10,
                connectionstyle=f"arc3,rad={rad}",
                color="#555555" if label else "#999999",
                linewidth=1.0,
                zorder=1,
            )
        )
    samples = [_curve(diagram.positions[a], diagram.positions[b], rad) for a, b, _, rad in curves]
    placed: list[tuple[float, float]] = []
    for k, (source, target, label, rad) in enumerate(curves):
        if not label:
            continue
        others = [p for m, points in enumerate(samples) if m != k for p in points]
        others += list(diagram.positions.values())
        (mx, my), angle = _label_place(samples[k], others, placed, CHAR_WIDTH * len(label))
        placed.append((mx, my))
        ax.text(
            mx,
            my,
            label,
            ha="center",
            va="center",
            fontsize=8,
            zorder=2,
            rotation=angle,
            rotation_mode="anchor",
            color="#08306b",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
        )


def _curve(start: tuple[float, float], end: tuple[float, float], rad: float, count: int = 21) -> list:
    """Points of matplotlib's arc3 curve from `start` to `end` (a quadratic Bezier through its control point)."""
    (x1, y1), (x2, y2) = start, end
    cx, cy = (x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)
    ts = [k / (count - 1) for k in range(count)]
    return [
        ((1 - t) ** 2 * x1 + 2 * t * (1 - t) * cx + t**2 * x2, (1 - t) ** 2 * y1 + 2 * t * (1 - t) * cy + t**2 * y2)
        for t in ts
    ]


def _label_place(
    points: list[tuple[float, float]],
    others: list[tuple[float, float]],
    placed: list[tuple[float, float]],
    length: float,
) -> tuple[tuple[float, float], float]:
    """Where on its edge (`points`, sampled) a label of `length` units goes, and its angle (along
    the edge, upright): the point, clear of both end nodes, whose label stretch lies farthest from
    the other edges, the nodes and the labels placed before it. An edge too short for its label
    gets it beside its middle, level."""
    (ax, ay), (bx, by) = points[0], points[-1]
    half = length / 2
    best, where, angle = -1.0, None, 0.0
    for k in range(1, len(points) - 1):
        x, y = points[k]
        if min(math.hypot(x - ax, y - ay), math.hypot(x - bx, y - by)) < half + NODE_CLEARANCE:
            continue
        (x0, y0), (x1, y1) = points[k - 1], points[k + 1]
        theta = math.atan2(y1 - y0, x1 - x0)
        stretch = [
            (x + f * half * math.cos(theta), y + f * half * math.sin(theta)) for f in (-1.0, -0.5, 0.0, 0.5, 1.0)
        ]
        clearance = min((math.hypot(sx - px, sy - py) for sx, sy in stretch for px, py in others), default=9.0)
        clearance = min(clearance, *(math.hypot(x - px, y - py) / max(length, 0.5) for px, py in placed), 9.0)
        if clearance > best + 1e-9:
            best, where, angle = clearance, (x, y), math.degrees(theta)
    if where is None:  # too short: level, beside the middle (to the right of a vertical edge, above a level one)
        x, y = points[len(points) // 2]
        vertical = abs(bx - ax) < abs(by - ay)
        return ((x + half + 0.15, y) if vertical else (x, y + 0.25)), 0.0
    if angle > 90:
        angle -= 180
    elif angle <= -90:
        angle += 180
    return where, angle


NODE_CLEARANCE = 0.4  # data units from a node's centre that a label keeps free (the node's box)
CHAR_WIDTH = 0.052  # data units per character of an edge label at 8 pt, 1.3 inches per unit

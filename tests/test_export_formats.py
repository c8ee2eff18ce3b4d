"""A model that leaves the library: the exported module prints its layers, scripts, exports with
torch.export and ONNX (run in onnxruntime), pickles, and writes a standalone source file that runs
where the library cannot be imported; on every ready-made space at a small size."""

from __future__ import annotations

import copy
import inspect
import io
import json
import subprocess
import sys
import warnings

import matplotlib.pyplot as plt
import pytest
import torch
from torch.export import Dim

from ops import Relu, conv1d
from search import SearchResult, plot_architecture
from search.spaces import (
    NB201_OPS,
    darts_genotype_tuple,
    darts_space,
    mobilenet_space,
    nb201_1d_space,
    transformer_space,
)
from supernet import BasicExecutor, Op, Tensor, get_nodes, search_space
from supernet.export_module import ExportedModule, Layer, export_module
from supernet.standalone import standalone_source, write_standalone

MOBILENET = dict(
    stem_channels=8,
    stages=((8, 1, 1), (12, 2, 2), (16, 3, 2)),
    expansion_ratios=(2, 4),
    kernel_sizes=(3, 5),
    width_multipliers=(0.5, 1.0),
)


def _spread(space) -> dict:
    """An architecture that picks option / value k mod n for the k-th parameter, so every space
    uses many different ops."""
    architecture = {}
    for k, (pid, param) in enumerate(space.parametrization().items()):
        values = param.values() if hasattr(param, "values") else list(param.choices)
        architecture[pid] = values[k % len(values)]
    return architecture


SPACES = {
    "nb201": (lambda: nb201_1d_space(channels=4, cells_per_stage=1), (1, 40)),
    "darts": (
        lambda: darts_space(
            Tensor("input", (2, 3, 8, 8), ("N", "C", "H", "W")), channels=4, layers=3, steps=2, multiplier=2
        ),
        (3, 8, 8),
    ),
    "mobilenet": (lambda: mobilenet_space(Tensor("input", (2, 1, 40), ("N", "C", "L")), **MOBILENET), (1, 40)),
    "transformer": (
        lambda: transformer_space(Tensor("tokens", (2, 10, 3), ("N", "T", "C")), d_model=8, blocks=2, heads=(1, 2)),
        (10, 3),
    ),
}
_CACHE: dict = {}


def _case(name: str):
    """(result, model in eval mode, example input) of a space; the model carries trained-looking
    (random, non-default) batch statistics so that eval mode is tested on real numbers."""
    if name not in _CACHE:
        build, shape = SPACES[name]
        space = build()
        result = SearchResult(architecture=_spread(space), probabilities={}, history={}, metrics=[], space=space)
        model = result.export(seed=0)
        with torch.no_grad():
            for key, buffer in model.named_buffers():
                buffer.copy_(
                    torch.rand(buffer.shape) + 0.5 if key.endswith("running_var") else torch.randn(buffer.shape) * 0.1
                )
        x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
        _CACHE[name] = (result, model.eval(), x)
    return _CACHE[name]


def _program(name: str):
    """torch.export of a space's model with a dynamic batch axis (made once: the ONNX test reuses it)."""
    key = ("program", name)
    if key not in _CACHE:
        _, model, x = _case(name)
        _CACHE[key] = torch.export.export(model, (x,), dynamic_shapes=({0: Dim("batch")},))
    return _CACHE[key]


@pytest.mark.parametrize("name", SPACES)
def test_exported_model_prints_its_layers_by_id_with_op_and_attributes(name):
    result, model, _ = _case(name)
    text = repr(model)
    ops = [n for n in get_nodes(result.discretized()) if isinstance(n, Op)]
    assert text.startswith("ExportedModule(\n")
    for op in ops:
        assert f"({op.id}): {type(op).__name__}(" in text
    assert "Module()" not in text
    layers = [line for line in text.splitlines()[1:-1]]
    assert len(layers) == len(ops)  # one line per op, in execution order
    conv = next(op for op in ops if type(op).__name__.startswith("Conv") or type(op).__name__ == "Linear")
    shape = list(model.get_parameter(f"{conv.id}.weight").shape)
    assert f"weight={shape}" in next(line for line in layers if f"({conv.id})" in line)
    if name != "transformer":
        assert "stride=" in text and "padding=" in text


@pytest.mark.parametrize("name", SPACES)
def test_generated_code_computes_what_the_executor_computes(name):
    """Every op's declared torch code against its own implementation, in training (batch
    statistics, running-statistic updates) and in eval mode."""
    result, model, x = _case(name)
    exported = copy.deepcopy(model)
    reference = BasicExecutor(result.discretized(), seed=0)
    reference.load_state_dict(exported.state_dict())
    for training in (True, False):
        exported.train(training), reference.train(training)
        torch.manual_seed(3)
        mine = exported(x)
        torch.manual_seed(3)
        theirs = reference(x)
        assert torch.equal(mine, theirs)
    state, expected = exported.state_dict(), reference.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.parametrize("name", SPACES)
def test_single_input_model_has_forward_x_scripts_and_exports_with_a_dynamic_batch(name):
    _, model, x = _case(name)
    assert list(inspect.signature(model.forward).parameters) == ["x"]
    assert "def forward(self, x):" in model.code
    scripted = torch.jit.script(model)
    assert torch.equal(scripted(x), model(x))
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    assert torch.equal(torch.jit.load(buffer)(x), model(x))
    program = _program(name)
    for batch in (5, 3):
        assert torch.allclose(program.module()(x[:batch]), model(x[:batch]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"input .* expects shape \(N, "):
        model(x[..., :-1])


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_multi_input_model_takes_its_inputs_by_name_and_scripts():
    a = Tensor("a", (2, 1, 16), ("N", "C", "L"))
    b = Tensor("b", (2, 1, 16), ("N", "C", "L"))

    @search_space
    def two_inputs(a, b):
        from ops import Add

        return Add()(conv1d(a, 2, 3), conv1d(Relu()(b), 2, 3))

    graph = two_inputs(a, b)
    model = export_module(graph, seed=0)  # a fixed graph: nothing to choose
    assert list(inspect.signature(model.forward).parameters) == ["a", "b"]
    xa, xb = torch.randn(3, 1, 16), torch.randn(3, 1, 16)
    expected = BasicExecutor(graph, seed=0)(xa, xb)
    assert torch.equal(model(xa, xb), expected) and torch.equal(model(b=xb, a=xa), expected)
    assert torch.equal(torch.jit.script(model)(xa, xb), expected)


def _onnx_outputs(name, x, path, dynamo):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    if dynamo:
        pytest.importorskip("onnxscript")
        # the default exporter goes through torch.export: give it the program made with the batch axis dynamic
        torch.onnx.export(_program(name), (x,), path, dynamo=True, verbose=False)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer warns about the shape check it traces through
            torch.onnx.export(
                _case(name)[1], (x,), path, input_names=["x"], dynamic_axes={"x": {0: "batch"}}, dynamo=False
            )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x[:batch].numpy()})[0] for batch in (5, 2)]


# torch's ONNX exporter copies its pytree specs through a check that torch itself deprecates
@pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", SPACES)
def test_onnx_export_runs_in_onnxruntime_with_pytorchs_outputs(name, tmp_path):
    _, model, x = _case(name)
    # the default (torch.export-based) exporter on one space, the quicker TorchScript one on all
    for dynamo in (False, True) if name == "nb201" else (False,):
        outputs = _onnx_outputs(name, x, tmp_path / f"model_{dynamo}.onnx", dynamo)
        for out, batch in zip(outputs, (5, 2)):
            with torch.no_grad():
                expected = model(x[:batch]).numpy()
            assert out.shape == expected.shape
            assert abs(out - expected).max() <= 1e-5 * max(1.0, abs(expected).max())


_BLOCKED_RUN = r"""
import importlib.util, json, sys
for name in ("supernet", "ops", "search"):
    sys.modules[name] = None  # importing them now raises ImportError
for name in ("supernet", "ops", "search"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} is importable")
import torch
torch.set_num_threads(1)  # as in the test process: equal reductions, bit for bit
report = {}
for entry in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location(entry["module"], entry["source"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load()
    x = torch.load(entry["input"], weights_only=True)
    expected = torch.load(entry["output"], weights_only=True)
    report[entry["module"]] = {"equal": bool(torch.equal(model(x), expected)), "repr": repr(model).splitlines()[1]}
print(json.dumps(report))
"""


def test_export_source_runs_in_a_process_that_cannot_import_the_library(tmp_path):
    entries = []
    for name in SPACES:
        result, model, x = _case(name)
        retrained = copy.deepcopy(model)
        with torch.no_grad():  # weights other than a fresh export's: the file must carry these
            for p in retrained.parameters():
                p.add_(0.01)
        source, weights = result.export_source(tmp_path / name / f"{name}_model.py", model=retrained)
        assert weights == source.with_suffix(".pt") and weights.is_file()
        text = source.read_text()
        assert "supernet" not in text.replace("supernet's export_source", "") and "import ops" not in text
        assert "def forward(self, x):" in text and "class Model(ArchitectureModule):" in text
        torch.save(x, tmp_path / f"{name}_x.pt")
        with torch.no_grad():
            torch.save(retrained(x), tmp_path / f"{name}_y.pt")
        entries.append(
            {
                "module": f"{name}_model",
                "source": str(source),
                "input": str(tmp_path / f"{name}_x.pt"),
                "output": str(tmp_path / f"{name}_y.pt"),
            }
        )
    run = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, json.dumps(entries)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(report) == {f"{name}_model" for name in SPACES}
    for name, outcome in report.items():
        assert outcome["equal"], (name, outcome)
        assert outcome["repr"].startswith("  (") and "): " in outcome["repr"]


def test_export_source_of_a_fresh_export_and_bad_paths(tmp_path):
    result, _, x = _case("nb201")
    source, weights = result.export_source(tmp_path / "fresh.py", seed=0)
    namespace: dict = {"__file__": str(source)}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    assert torch.equal(namespace["load"]()(x), result.export(seed=0).eval()(x))
    with pytest.raises(ValueError, match=r"\.py file"):
        result.export_source(tmp_path / "model.txt")
    with pytest.raises(ValueError, match="Python identifier"):
        result.export_source(tmp_path / "my-model.py")
    with pytest.raises(TypeError, match="made by export"):
        result.export_source(tmp_path / "m.py", model=torch.nn.Linear(2, 2))


class Square(Op):
    """A user op that declares no torch code."""

    def _forward_implementation(self, x):
        return x * x


def test_an_op_without_source_still_exports_but_cannot_be_written_standalone(tmp_path):
    x_in = Tensor("x", (2, 1, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        return Square()(conv1d(x, 2, 3))

    graph = space(x_in)
    model = export_module(graph, seed=0)
    x = torch.randn(3, 1, 16)
    assert torch.equal(model(x), BasicExecutor(graph, seed=0)(x))
    assert [layer.id for layer in model.export_code.library_calls] == ["space_0.Square_0"]
    with pytest.raises(ValueError, match=r"op space_0\.Square_0 \(Square\) declares no torch code"):
        standalone_source(model.export_code)
    with pytest.raises(ValueError, match="Square_0"):
        write_standalone(model, tmp_path / "square.py")
    assert not (tmp_path / "square.py").exists()


def test_pickled_and_copied_modules_rebuild_from_code_and_weights(tmp_path):
    _, model, x = _case("darts")
    torch.save(model, tmp_path / "whole.pt")
    loaded = torch.load(tmp_path / "whole.pt", weights_only=False)
    assert isinstance(loaded, ExportedModule) and type(loaded) is not type(model)  # a class of its own
    assert not loaded.training and torch.equal(loaded(x), model(x))
    clone = copy.deepcopy(model)
    assert torch.equal(clone(x), model(x)) and clone.code == model.code
    assert all(
        isinstance(m, Layer) for name, m in model.named_modules() if name.endswith("_0") and not list(m.children())
    )


# --- plot_architecture ----------------------------------------------------------------------------
def _texts(figure) -> list[list[str]]:
    return [[t.get_text() for t in ax.texts] for ax in figure.axes]


def test_plot_architecture_draws_nb201_and_darts_cells_with_their_ops(tmp_path):
    result, _, _ = _case("nb201")
    figure = plot_architecture(result, tmp_path / "nb201.png")
    assert (tmp_path / "nb201.png").stat().st_size > 5000
    (texts,) = _texts(figure)
    chosen = [NB201_OPS[result.architecture[sid]] for sid in result.architecture]
    assert sorted(t for t in texts if t in NB201_OPS) == sorted(op for op in chosen if op != "none")
    assert sorted(t for t in texts if t.isdigit()) == ["0", "1", "2", "3"]

    result, _, _ = _case("darts")
    figure = plot_architecture(result, tmp_path / "darts.png")
    genotype = darts_genotype_tuple(result.architecture, multiplier=2)
    normal, reduction = _texts(figure)
    assert [ax.get_title() for ax in figure.axes] == ["normal cell", "reduction cell"]
    for texts, genes in ((normal, genotype.normal), (reduction, genotype.reduce)):
        assert sorted(t for t in texts if "_" in t and "{" not in t) == sorted(op for op, _ in genes)
        assert {"c_{k-2}", "c_{k-1}", "c_{k}", "0", "1"} <= set(texts)
    plt.close("all")


def test_plot_architecture_draws_other_spaces_as_their_op_graph(tmp_path):
    for name in ("mobilenet", "transformer"):
        result, model, _ = _case(name)
        path = (
            tmp_path / f"{name}.png" if name == "transformer" else None
        )  # one file: tall figures take seconds to save
        figure = plot_architecture(result, path)
        (texts,) = _texts(figure)
        ops = [n for n in get_nodes(result.discretized()) if isinstance(n, Op)]
        assert len(texts) == len(ops) + 1  # the input and every op, one box each
        assert sorted(
            t.split("\n")[0] for t in texts if t.split("\n")[0] != "input" and t.split("\n")[0] != "tokens"
        ) == sorted(type(op).__name__ for op in ops)
    assert (tmp_path / "transformer.png").stat().st_size > 5000
    bare = SearchResult(architecture=result.architecture, probabilities={}, history={}, metrics=[])
    with pytest.raises(ValueError, match="no search space"):
        plot_architecture(bare)
    plt.close("all")


def test_code_generation_refuses_choices_and_ids_that_are_not_python_names():
    space, _ = SPACES["nb201"]
    with pytest.raises(ValueError, match=r"choices left \(ChoiceOp .*ChoiceOp_0\); discretize it first"):
        export_module(space())
    x_in = Tensor("x", (2, 3), ("N", "C"))

    @search_space
    def odd(x):
        from ops import Linear

        return Linear()(x, Tensor("my-weight", (4, 3), ("O", "I")))

    with pytest.raises(
        ValueError, match=r"node id 'odd_0\.Linear_0\.my-weight'.*segment 'my-weight' is not a Python name"
    ):
        export_module(odd(x_in))

"""Mixed precision (search.precision): each precision searches, saves, resumes; what stays float32 stays float32."""

import math
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import search.precision as precision_module
from search import BilevelConfig, BilevelOptimizer, fit_supernet
from search.checkpoint import Checkpointer
from search.evaluate import evaluate, evaluate_module
from search.precision import PRECISIONS, MixedPrecision, check_precision
from search.retrain import train_classifier
from search.strategies import STRATEGIES, get_strategy
from search.settings import ExecutionSettings
from supernet import SoftmaxMixture, SupernetExecutor, Tensor

from helpers import threshold_data, resume_space

MIXED = ("bf16-mixed", "16-mixed")


def search(precision="32", checkpoint_dir=None, resume=False, **overrides):
    settings = dict(
        epochs=4,
        batch_size=16,
        seed=3,
        progress=False,
        optim={"arch_lr": 3e-2},
        on_undecided="ignore",
        precision=precision,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    settings.update(overrides)
    return fit_supernet(resume_space(), threshold_data(), **settings)


class Crash(Exception):
    pass


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["fp16", "bf16", 32, None, "64"])
def test_an_unknown_precision_is_refused_naming_the_argument_and_the_allowed_values(bad):
    for call in (
        lambda: search(bad, epochs=1),
        lambda: ExecutionSettings(precision=bad),
        lambda: train_classifier(torch.nn.Linear(2, 2), *[threshold_data()] * 2, epochs=1, precision=bad),
    ):
        with pytest.raises(ValueError, match=r"precision must be one of \('32', 'bf16-mixed', '16-mixed'\)"):
            call()


def test_a_device_without_autocast_is_refused_naming_precision_and_device():
    with pytest.raises(ValueError, match=r"precision='bf16-mixed'.*device 'meta'"):
        check_precision("bf16-mixed", "meta")
    assert check_precision("32", "meta") == "32"  # float32 needs no autocast


def test_16_mixed_is_refused_for_a_strategy_that_takes_its_gradient_by_hand():
    with pytest.raises(ValueError, match=r"precision='16-mixed'.*'darts2'"):
        search("16-mixed", strategy="darts2", epochs=1)


def test_second_order_darts_runs_in_bf16():
    result = search("bf16-mixed", strategy="darts2", epochs=1)
    assert result.config["precision"] == "bf16-mixed"
    assert math.isfinite(result.metrics[0]["val_loss"])


# --- each precision end to end -------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quiet: no scheduler-order or autocast warning
        return {p: search(p) for p in PRECISIONS}


def test_each_precision_searches_and_records_itself(uninterrupted):
    for name, result in uninterrupted.items():
        assert result.config["precision"] == name and result.config["compile"] is False
        assert all(math.isfinite(row["train_loss"]) for row in result.metrics)
        assert all(v.dtype in (torch.float32, torch.int64) for v in result.supernet_state.values())
    # mixed precision changes the arithmetic, not the search: close to float32, not equal
    base = uninterrupted["32"].metrics[-1]["train_loss"]
    for name in MIXED:
        other = uninterrupted[name].metrics[-1]["train_loss"]
        assert other != base and abs(other - base) < 0.05, name


@pytest.mark.parametrize("name", MIXED)
def test_a_resumed_mixed_precision_search_is_bit_identical(uninterrupted, tmp_path, name):
    def crash(state):
        if state["epoch"] == 2:
            raise Crash

    with pytest.raises(Crash):
        search(name, tmp_path, callbacks=[crash])
    saved = torch.load(Checkpointer(tmp_path).latest(), weights_only=True)
    assert saved["bilevel"]["precision"]["precision"] == name
    resumed = search(name, tmp_path, resume=True)
    assert resumed == uninterrupted[name]
    assert resumed.history.pop("resumed_at_step") == [6]  # the resume point is recorded; the rest is identical
    assert resumed.metrics == uninterrupted[name].metrics and resumed.history == uninterrupted[name].history


def test_a_checkpoint_of_one_precision_is_not_resumed_at_another(tmp_path):
    search("bf16-mixed", tmp_path, epochs=1)
    with pytest.raises(ValueError, match=r"precision: 'bf16-mixed' in the checkpoint, '32' now"):
        search("32", tmp_path, resume=True, epochs=2)


def test_the_scaler_state_is_checkpointed_and_restored(monkeypatch, tmp_path):
    """With a scale that overflows at first, the scaler skips steps and lowers its scale over the
    epochs: a resume that forgot its state would scale differently and differ."""
    monkeypatch.setattr(precision_module, "INIT_SCALE", 2.0**24)
    reference = search("16-mixed")

    def crash(state):
        if state["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        search("16-mixed", tmp_path, callbacks=[crash])
    state = torch.load(Checkpointer(tmp_path).latest(), weights_only=True)["bilevel"]["precision"]
    assert state["skipped"]["weight"] > 0 and state["scalers"]["weight"]["scale"] < 2.0**24
    assert search("16-mixed", tmp_path, resume=True) == reference


# --- what stays in float32 -----------------------------------------------------------------------


class RecordingMixture(SoftmaxMixture):
    """Softmax mixing that records whether autocast was on where its weights were computed."""

    def __init__(self) -> None:
        super().__init__()
        self.autocast_seen: list[bool] = []

    def weights(self, alpha, training, sid=None, phase=None):
        self.autocast_seen.append(torch.is_autocast_enabled("cpu"))
        weights, run = super().weights(alpha, training, sid, phase)
        assert weights.dtype == torch.float32
        return weights, run


class OpDtypes(TorchDispatchMode):
    """The output dtypes of every aten op named in `names` (default: convolution, softmax) run inside."""

    def __init__(self, *names: str) -> None:
        super().__init__()
        self.seen: dict[str, set] = {name: set() for name in names or ("convolution", "_softmax")}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in self.seen:
            self.seen[name].add((out[0] if isinstance(out, tuple) else out).dtype)
        return out


@pytest.mark.parametrize("name,dtype", [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)])
def test_convolutions_run_in_low_precision_and_mixing_weights_statistics_and_loss_in_float32(name, dtype):
    mixture = RecordingMixture()
    supernet = SupernetExecutor(resume_space(), mixture=mixture, seed=0)
    losses = []

    def loss(logits, y):
        losses.append(logits.dtype)
        return torch.nn.functional.cross_entropy(logits, y)

    bilevel = BilevelOptimizer(
        supernet, loss, BilevelConfig(arch_lr=0.1), total_epochs=1, precision=MixedPrecision(name, "cpu")
    )
    x, y = threshold_data(16)
    with OpDtypes() as ops:
        bilevel.architecture_step(x, y)
        _, logits = bilevel.weight_step(x, y)
    assert ops.seen["convolution"] == {dtype}  # autocast is on for the forward passes...
    assert ops.seen["_softmax"] == {torch.float32}  # ...not for the mixing weights
    assert mixture.autocast_seen and not any(mixture.autocast_seen)
    assert losses == [torch.float32, torch.float32] and logits.dtype == torch.float32
    assert all(b.dtype == torch.float32 for b in supernet.buffers() if b.is_floating_point())
    assert all(p.dtype == torch.float32 for p in supernet.parameters())


def test_the_cost_penalty_is_computed_outside_autocast():
    seen = []

    def regularizer():
        seen.append(torch.is_autocast_enabled("cpu"))
        return torch.zeros(())

    supernet = SupernetExecutor(resume_space(), seed=0)
    bilevel = BilevelOptimizer(
        supernet, torch.nn.functional.cross_entropy, BilevelConfig(), 1, precision=MixedPrecision("bf16-mixed")
    )
    bilevel.architecture_step(*threshold_data(16), regularizer=regularizer)
    assert seen == [False]


def test_a_cost_term_searches_in_bf16():
    result = search("bf16-mixed", epochs=1, cost="params", cost_weight=0.5)
    assert result.metrics[0]["expected_params"] > 0


# --- the guard and the scaler --------------------------------------------------------------------


def test_the_guard_does_not_count_a_scalers_skipped_steps(monkeypatch):
    monkeypatch.setattr(precision_module, "INIT_SCALE", 2.0**40)  # every early step overflows
    captured = {}
    original = BilevelOptimizer.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        captured["bilevel"] = self

    monkeypatch.setattr(BilevelOptimizer, "__init__", keep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no guard warning, no scheduler warning
        result = search("16-mixed", epochs=2, max_bad_steps=1)
    amp = captured["bilevel"].precision
    # every weight step overflowed (the guard would stop an epoch of failed steps), none counted as bad
    assert amp.skipped["weight"] == 6 and amp.skipped["architecture"] > 0
    assert amp.scale("weight") == 2.0**34
    assert all(math.isfinite(row["train_loss"]) for row in result.metrics)


def test_a_non_finite_loss_is_still_a_bad_step_under_16_mixed():
    calls = {"n": 0}

    def poisoned(logits, y):
        calls["n"] += 1
        out = torch.nn.functional.cross_entropy(logits, y)
        return out * math.nan if calls["n"] in (3, 4) else out

    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = search("16-mixed", epochs=1, loss=poisoned, max_bad_steps=3)
    assert math.isfinite(result.metrics[0]["train_loss"])


def test_an_overflowing_step_leaves_the_weights_and_optimizer_state_untouched():
    supernet = SupernetExecutor(resume_space(), seed=0)
    amp = MixedPrecision("16-mixed", "cpu", init_scale=2.0**60)
    bilevel = BilevelOptimizer(supernet, torch.nn.functional.cross_entropy, BilevelConfig(), 1, precision=amp)
    before = {k: v.clone() for k, v in supernet.state_dict().items() if not k.startswith("arch.")}
    bilevel.weight_step(*threshold_data(16))
    assert amp.skipped["weight"] == 1 and amp.scale("weight") == 2.0**59
    after = supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "num_batches" not in k)
    assert not bilevel.weight_optimizer.state  # no momentum buffer was created


# --- retraining and evaluation -------------------------------------------------------------------


@pytest.mark.parametrize("name", MIXED)
def test_retraining_and_evaluation_take_the_precision(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    data = threshold_data()
    report = train_classifier(model, data, data, epochs=3, batch_size=16, progress=False, precision=name)
    assert report["test_accuracy"] > 0.5 and all(math.isfinite(v) for v in report["train_loss"])
    full = evaluate_module(model, data)
    low = evaluate_module(model, data, precision=name)
    assert abs(full["loss"] - low["loss"]) < 0.02 and low["loss"] != full["loss"]


def test_evaluate_of_a_result_takes_the_precision(uninterrupted):
    result = uninterrupted["bf16-mixed"]
    data = threshold_data()
    full = evaluate(result, data, batches=2, batch_size=16)
    low = evaluate(result, data, batches=2, batch_size=16, precision="bf16-mixed")
    assert abs(full["accuracy"] - low["accuracy"]) <= 0.05 and abs(full["loss"] - low["loss"]) < 0.05
    with pytest.raises(ValueError, match="precision must be one of"):
        evaluate(result, data, precision="half")


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_searches_in_bf16(strategy):
    """Including the sampling ones, whose off gates compute their option again in the backward
    pass: under the forward pass's autocast, or its bf16 input meets float32 weights."""
    result = search("bf16-mixed", strategy=strategy, epochs=1)
    assert result.config["precision"] == "bf16-mixed"
    assert all(math.isfinite(v) for k, v in result.metrics[0].items() if k.endswith("loss"))


@pytest.mark.parametrize("strategy", ["gdas", "proxyless"])
def test_off_gates_recompute_their_option_under_the_forward_autocast(strategy):
    from search.spaces import nb201_space
    from supernet import Tensor

    torch.manual_seed(0)
    space = nb201_space(Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W")), channels=4, cells_per_stage=1)
    chosen = get_strategy(strategy)
    supernet = SupernetExecutor(space, mixture=chosen.mixture(), seed=0)
    bilevel = BilevelOptimizer(
        supernet,
        torch.nn.functional.cross_entropy,
        BilevelConfig(arch_lr=0.1),
        1,
        precision=MixedPrecision("bf16-mixed"),
        strategy=chosen,
    )
    batch = (torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,)))
    before = [a.detach().clone() for a in bilevel.alphas]
    chosen.architecture_step(bilevel, batch, batch)
    assert any(not torch.equal(a, b) for a, b in zip(bilevel.alphas, before))


def test_the_darts_space_steps_in_bf16():
    """Its BatchNorms without affine parameters get the mixing weight as a float32 scale (a bf16
    scale next to float32 statistics is refused by batch_norm)."""
    from search.spaces import darts_space
    from supernet import Tensor

    torch.manual_seed(0)
    supernet = SupernetExecutor(darts_space(Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W")), channels=4, layers=3))
    bilevel = BilevelOptimizer(
        supernet, torch.nn.functional.cross_entropy, BilevelConfig(), 1, precision=MixedPrecision("bf16-mixed")
    )
    batch = (torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)))
    for _ in range(2):
        bilevel.architecture_step(*batch)
        loss, _ = bilevel.weight_step(*batch)
    assert math.isfinite(float(loss))


# --- depthwise convolutions stay float32 under CPU autocast (docs/precision.md) --------------------


def convolution(groups: int, channels: int = 8):
    from ops import Conv2d

    x = Tensor("x", (2, channels, 6, 6), ("N", "C", "H", "W"))
    weight = Tensor("weight", (channels, channels // groups, 3, 3), ("O", "I", "kH", "kW"))
    return Conv2d(groups=groups)(x, weight)


@pytest.mark.parametrize("groups,computes_in", [(8, torch.float32), (1, torch.bfloat16), (2, torch.bfloat16)])
def test_a_depthwise_convolution_computes_in_float32_under_cpu_autocast_and_returns_bf16(groups, computes_in):
    """oneDNN's bf16 depthwise backward is slower than float32's on CPU, so a depthwise Conv2d declares
    float32; dense and grouped (not depthwise) ones stay bf16. Either way the output is autocast's dtype."""
    op = convolution(groups)
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    weight = torch.randn(8, 8 // groups, 3, 3, requires_grad=True)
    with OpDtypes() as ops, torch.autocast("cpu", dtype=torch.bfloat16):
        out = op.compute(x, weight, training=True)
        out.float().square().sum().backward()
    assert ops.seen["convolution"] == {computes_in}
    assert out.dtype == torch.bfloat16
    assert x.grad.dtype == weight.grad.dtype == torch.float32
    reference = torch.nn.functional.conv2d(x.detach(), weight.detach(), padding=1, groups=groups)
    if computes_in == torch.float32:  # computed in float32, then rounded once
        assert torch.equal(out, reference.to(torch.bfloat16))
    else:
        assert torch.allclose(out.float(), reference, rtol=2e-2, atol=2e-2 * float(reference.abs().max()))


def test_a_depthwise_convolution_outside_autocast_or_off_the_cpu_runs_as_it_is():
    op = convolution(8)
    x, weight = torch.randn(2, 8, 6, 6, dtype=torch.float64), torch.randn(8, 1, 3, 3, dtype=torch.float64)
    assert op.compute(x, weight, training=True).dtype == torch.float64  # no autocast: no cast
    assert op.float32_under_cpu_autocast(8) and not op.float32_under_cpu_autocast(8, groups=1)
    assert not convolution(1).float32_under_cpu_autocast(8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        meta = op.compute(x.to("meta").float(), weight.to("meta").float(), training=True)
    assert meta.dtype == torch.float32  # a non-CPU tensor is left to its own device's autocast


# --- the mixing weights' dot products are float32 under CPU autocast (docs/precision.md) ----------


def test_the_mixing_weights_gradient_in_bf16_is_a_float32_dot_product():
    """`LinearCombination` gives a coefficient <grad, y>; on bf16 CPU tensors it is computed in float32
    (torch.dot in bf16 is ~8x slower there, and rounds the sum to bf16: ~1e-3 off)."""
    from supernet.combination import LinearCombination, Weighted

    torch.manual_seed(0)
    y = torch.randn(4, 16, 8, 8).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(4, 16, 8, 8).bfloat16().contiguous(memory_format=torch.channels_last)
    c = torch.tensor(0.3, requires_grad=True)
    with OpDtypes("dot") as seen:
        LinearCombination.apply((Weighted(),), y, c).backward(grad)
    exact = (grad.double() * y.detach().double()).sum()
    assert seen.seen["dot"] == {torch.float32}
    assert c.grad.dtype == torch.float32
    assert abs(float(c.grad) - float(exact)) <= 1e-5 * float((grad.double() * y.detach().double()).abs().sum())

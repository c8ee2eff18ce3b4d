"""What a new user passes (loaders, labels, losses, metrics, dtypes, NumPy data, saved files, choices)
does what it says or fails at once with an error naming the culprit (issue 13, items 2-11)."""

import functools
import json
import math
import warnings

import numpy as np
import pytest
import torch
import torchmetrics
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, TensorDataset, WeightedRandomSampler

from ops import AvgPooling, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from search import SearchResult, fit_supernet
from search.loaders import split_in_halves
from supernet import ChoiceOp, IntScalarParameter, SupernetExecutor, Tensor, lazy, search_space
from helpers import classifier

QUIET = dict(epochs=1, batch_size=8, progress=False, seed=0, on_undecided="ignore")  # one epoch is undecided
CLASSES = 3


def data(n=64, classes=CLASSES):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, 16, generator=g), torch.randint(0, classes, (n,), generator=g)


def counting(loss=torch.nn.functional.cross_entropy):
    """`loss`, recording the batch size of every call."""
    sizes = []

    def counted(logits, y):
        sizes.append(len(logits))
        return loss(logits, y)

    return counted, sizes


# 2. a DataLoader with val=None keeps its batching, and the result records what ran


def test_dataloader_with_val_none_keeps_its_batch_size_and_the_config_records_it():
    loss, sizes = counting()
    loader = DataLoader(TensorDataset(*data()), batch_size=16, shuffle=True)
    result = fit_supernet(classifier(), loader, loss=loss, **{**QUIET, "batch_size": 8})
    assert set(sizes) == {16}  # 2 batches of each 32-sample half, not batches of 8
    assert result.config["batch_size"] == 16 and result.config["val_batch_size"] == 16
    again = fit_supernet(classifier(), DataLoader(TensorDataset(*data()), batch_size=16, shuffle=True), **QUIET)
    assert again.metrics == fit_supernet(classifier(), loader, **QUIET).metrics  # the halves' order is seeded


def test_split_of_a_loader_batches_and_shuffles_each_half_as_the_loader_does():
    dataset = TensorDataset(*data())
    collate = torch.utils.data.default_collate
    for shuffle, sampler in ((True, RandomSampler), (False, SequentialSampler)):
        first, second = split_in_halves(DataLoader(dataset, batch_size=5, shuffle=shuffle, collate_fn=collate), seed=0)
        for half in (first, second):
            assert isinstance(half, DataLoader) and half.batch_size == 5 and isinstance(half.sampler, sampler)
            assert half.collate_fn is collate and len(half.dataset) == 32 and not half.drop_last
        assert not set(first.dataset.indices) & set(second.dataset.indices)
    fixed = split_in_halves(DataLoader(dataset, batch_size=5), seed=0)[0]
    assert [b[1].tolist() for b in fixed] == [b[1].tolist() for b in fixed]  # shuffle=False: the same order each pass


def test_a_loader_whose_sampling_cannot_be_split_is_refused():
    dataset = TensorDataset(*data())
    weighted = DataLoader(dataset, batch_size=8, sampler=WeightedRandomSampler(torch.ones(64), 64))
    with pytest.raises(
        TypeError,
        match=r"val=None splits train in halves, but this DataLoader draws from a WeightedRandomSampler.*pass val= explicitly",
    ):
        fit_supernet(classifier(), weighted, **QUIET)


# 3. one-hot / probability labels


def test_one_hot_labels_train_as_class_indices_and_metrics_use_their_argmax():
    x, y = data()
    indices = fit_supernet(classifier(), (x, y), **QUIET)
    one_hot = fit_supernet(classifier(), (x, torch.nn.functional.one_hot(y, CLASSES).float()), **QUIET)
    row, expected = one_hot.metrics[0], indices.metrics[0]
    assert row["train_accuracy"] == expected["train_accuracy"] > 0 and row["val_accuracy"] == expected["val_accuracy"]
    assert row["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-5)


def test_probability_labels_with_a_custom_loss_get_accuracy_and_regression_targets_do_not():
    x, y = data()
    soft = torch.softmax(torch.randn(len(y), CLASSES, generator=torch.Generator().manual_seed(1)), dim=1)

    def soft_cross_entropy(logits, target):
        return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()

    result = fit_supernet(classifier(), (x, soft), loss=soft_cross_entropy, **QUIET)
    assert "train_accuracy" in result.metrics[0]
    regression = fit_supernet(
        classifier(), (x, torch.randn(len(y), CLASSES)), loss=torch.nn.functional.mse_loss, **QUIET
    )
    assert set(regression.metrics[0]) == {"epoch", "train_loss", "val_loss"}


# 4. a custom classification loss keeps accuracy and the label check; metric keys are distinct


def test_custom_cross_entropy_loss_keeps_the_accuracy_metric_and_the_label_range_check():
    x, y = data()
    result = fit_supernet(classifier(), (x, y), loss=torch.nn.CrossEntropyLoss(label_smoothing=0.1), **QUIET)
    assert 0 < result.metrics[0]["train_accuracy"] <= 1 and "val_accuracy" in result.metrics[0]
    y[7] = CLASSES
    wrapped = lambda logits, target: torch.nn.functional.cross_entropy(logits, target)  # noqa: E731
    with pytest.raises(ValueError, match=r"train label 3 \(sample 7\) is out of range: .* labels must lie in \[0, 2\]"):
        fit_supernet(classifier(), (x, y), data(), loss=wrapped, **QUIET)


def test_two_metrics_of_one_class_get_distinct_keys_and_a_dict_names_them():
    top1 = torchmetrics.classification.MulticlassAccuracy(CLASSES, average="micro")
    top2 = torchmetrics.classification.MulticlassAccuracy(CLASSES, top_k=2, average="micro")
    row = fit_supernet(classifier(), data(), metrics=[top1, top2], **QUIET).metrics[0]
    assert {"train_accuracy", "train_accuracy_2", "val_accuracy", "val_accuracy_2"} <= set(row)
    assert row["train_accuracy_2"] > row["train_accuracy"]  # top-2 on 3 classes beats top-1 here
    named = fit_supernet(classifier(), data(), metrics={"top1": top1, "top2": top2}, **QUIET).metrics[0]
    assert named["train_top1"] == row["train_accuracy"] and named["val_top2"] == row["val_accuracy_2"]
    with pytest.raises(TypeError, match=r"metrics: 'f1' is function, not a torchmetrics\.Metric"):
        fit_supernet(classifier(), data(), metrics={"f1": lambda p, t: 0}, **QUIET)


# 5. NaN data raises


def test_an_all_nan_dataset_raises_before_training():
    x, y = data()
    loss, sizes = counting()
    with pytest.raises(ValueError, match=r"train inputs hold NaN or inf values"):
        fit_supernet(classifier(), (torch.full_like(x, math.nan), y), loss=loss, **QUIET)
    assert not sizes


def test_an_epoch_in_which_every_step_was_skipped_raises():
    def nan_loss(logits, y):
        return torch.nn.functional.cross_entropy(logits, y) * math.nan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match=r"every architecture step of epoch 0 \(4\) had a non-finite loss"):
            fit_supernet(classifier(), data(), loss=nan_loss, max_bad_steps=100, **QUIET)


# 6. an empty architecture does not export


def test_a_result_with_an_empty_or_incomplete_architecture_refuses_to_export():
    space = classifier()
    with pytest.raises(ValueError, match=r"architecture is empty"):
        SearchResult(architecture={}, probabilities={}, history={}, metrics=[], space=space).export()
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def two(x):
        h = ChoiceOp(Identity(), Relu())(x)
        return ChoiceOp(Identity(), Relu())(h)

    partial = SearchResult(
        architecture={"two_0.ChoiceOp_0.choice": 1}, probabilities={}, history={}, metrics=[], space=two(x)
    )
    with pytest.raises(ValueError, match=r"chooses no option for switch\(es\) \['two_0\.ChoiceOp_1\.choice'\]"):
        partial.export()


# 7. dtypes


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.float64])
def test_inputs_of_another_dtype_are_refused_naming_it_and_converting_works(dtype):
    x, y = data()
    loss, sizes = counting()
    with pytest.raises(
        TypeError, match=rf"train inputs are {str(dtype)[6:]}, but input x takes float32 .*x\.to\(torch\.float32\)"
    ):
        fit_supernet(classifier(), ((x * 10).to(dtype), y), loss=loss, **QUIET)
    assert not sizes
    assert fit_supernet(classifier(), ((x * 10).to(dtype).float(), y), **QUIET).metrics


def test_labels_of_the_wrong_dtype_for_cross_entropy_are_refused():
    x, y = data()
    with pytest.raises(
        TypeError,
        match=r"train labels are float32 of shape \(8,\), but cross-entropy .* takes int64 class indices "
        r"of shape \(N,\) \(convert float class numbers with y\.long\(\)\) or float class probabilities of shape \(N, 3\)",
    ):
        fit_supernet(classifier(), (x, y.float()), **QUIET)
    with pytest.raises(
        TypeError,
        match=r"train labels are int32; cross-entropy takes int64 class indices: convert them with y\.long\(\)",
    ):
        fit_supernet(classifier(), (x, y.int()), **QUIET)


# 8. NumPy arrays


def test_numpy_arrays_are_accepted_as_tensors():
    x, y = data()
    from_numpy = fit_supernet(classifier(), (x.numpy(), y.numpy()), **QUIET)
    assert from_numpy == fit_supernet(classifier(), (x, y), **QUIET)
    with pytest.raises(
        TypeError,
        match=r"train must be an \(x, y\) pair of tensors or NumPy arrays.*got tuple of \(list, Tensor\) \(convert with torch\.as_tensor\)",
    ):
        fit_supernet(classifier(), (x.tolist(), y), **QUIET)
    with pytest.raises(TypeError, match=r"train inputs are float64"):  # NumPy's default dtype: converted as it is
        fit_supernet(classifier(), (x.numpy().astype(np.float64), y.numpy()), **QUIET)


# 9. corrupt files and another space


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("result")
    fit_supernet(classifier(), data(), **QUIET).save(path)
    return path


def test_a_truncated_result_json_or_garbage_weights_are_named_as_corrupt(saved, tmp_path):
    text = (saved / "result.json").read_text()
    (tmp_path / "result.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=rf"{tmp_path / 'result.json'} is corrupt \(not valid JSON"):
        SearchResult.load(tmp_path)
    (tmp_path / "result.json").write_text(json.dumps({"architecture": {}}))
    with pytest.raises(
        ValueError, match=r"result\.json is corrupt or not a saved SearchResult \(it lacks \['probabilities'"
    ):
        SearchResult.load(tmp_path)
    (tmp_path / "result.json").write_text(text)
    for garbage in (b"garbage" * 50, (saved / "supernet.pt").read_bytes()[:300]):
        (tmp_path / "supernet.pt").write_bytes(garbage)
        with pytest.raises(ValueError, match=rf"{tmp_path / 'supernet.pt'} is corrupt"):
            SearchResult.load(tmp_path)


def test_loading_with_another_space_fails_at_load(saved):
    assert SearchResult.load(saved, space=classifier()).export(inherit_weights=True)(data()[0]).shape == (64, CLASSES)
    with pytest.raises(
        ValueError,
        match=r"was searched on another space than the one given: .*weight shapes differ "
        r"\(space_0\.Linear_0\.bias: \(3,\) saved, \(4,\) in the space",
    ):
        SearchResult.load(saved, space=classifier(classes=4))
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x):  # same weights, another switch
        h = ChoiceOp(
            functools.partial(conv1d, out_channels=2, kernel_size=3), AvgPooling(3, 1, 1), MaxPooling(3, 1, 1)
        )(x)
        return linear(Flatten()(Relu()(h)), CLASSES)

    with pytest.raises(
        ValueError,
        match=r"the numbers of options differ \(space_0\.ChoiceOp_0\.choice: 2 in the result, 3 in the space\)",
    ):
        SearchResult.load(saved, space=space(x))


# 10. a per-sample loss


def test_a_loss_returning_a_vector_is_refused_naming_its_shape():
    loss = functools.partial(torch.nn.functional.cross_entropy, reduction="none")
    with pytest.raises(
        ValueError, match=r"the loss must return a scalar tensor .*got a tensor of shape \(8,\); reduce it"
    ):
        fit_supernet(classifier(), data(), loss=loss, **QUIET)


# 11. ChoiceOp options whose shapes never agree


def test_choice_options_that_never_share_a_shape_are_refused_when_mixed():
    # the language accepts options of different shapes (one-path executors run them); the
    # SupernetExecutor, which sums them, refuses them when it is built, and same_shape=True at the call
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    def build(*options, **kwargs):
        @search_space
        def space(x):
            return ChoiceOp(*options, **kwargs)(x)

        return space(x)

    def mixed(*options, **kwargs):
        return SupernetExecutor(build(*options, **kwargs))

    conv = functools.partial(conv1d, kernel_size=3)
    with pytest.raises(
        ValueError,
        match=r"ChoiceOp space_0\.ChoiceOp_0: options must have equal output shapes to be mixed.*"
        r"\(axis 1: a: 8, b: 4; shapes now a: \(1, 8, 16\), b: \(1, 4, 16\)\)",
    ):
        mixed(functools.partial(conv, out_channels=8), functools.partial(conv, out_channels=4), names=["a", "b"])
    with pytest.raises(
        ValueError, match=r"ChoiceOp space_0\.ChoiceOp_0: its options can never have the same output shape"
    ):
        build(functools.partial(conv, out_channels=8), functools.partial(conv, out_channels=4), same_shape=True)
    with pytest.raises(ValueError, match=r"axis 1: Conv1d_0: 8\.\.16 \(now 8\), Conv1d_1: 4"):
        mixed(functools.partial(conv, out_channels=IntScalarParameter(8, 16)), functools.partial(conv, out_channels=4))
    with pytest.raises(ValueError, match=r"axis 2: MaxPooling: 8, Identity: 16"):
        mixed(MaxPooling(2), Identity())
    with pytest.raises(
        ValueError, match=r"options have output shapes of different rank \(Flatten: 2 axes, Identity: 3 axes\)"
    ):
        build(Flatten(), Identity())
    # sizes that agree for some parameter values, symbolically equal sizes, and one-path choices build
    width = IntScalarParameter(1, 4)
    assert lazy(build(functools.partial(conv, out_channels=width), Identity()).shape()) == (1, 1, 16)
    assert lazy(
        build(functools.partial(conv1d, out_channels=2, kernel_size=5, dilation=2), MaxPooling(3, 1, 1)).shape()
    ) == (1, 2, 16)
    one_path = build(MaxPooling(2), Identity(), same_shape=False)
    assert lazy(one_path.shape()) == (1, 2, 8)


def test_can_agree_compares_symbolic_sizes_over_the_parameter_values():
    from supernet.choice import can_agree

    p, q = IntScalarParameter(1, 4, name="p"), IntScalarParameter(1, 10, name="q")
    assert can_agree([p * 2, 6]) and not can_agree([p * 2, 7]) and not can_agree([p, q + 100])
    assert can_agree([p + q, 2 * q]) and not can_agree([p, 5])
    assert p.current_value == 1 and q.current_value == 1  # the search leaves the parameters as they were


# issue 26.7: seeds are any integer; None draws one and records it; anything else is refused naming `seed`


def test_a_numpy_integer_seed_searches_as_the_same_int_does():
    with_numpy = fit_supernet(classifier(), data(), **{**QUIET, "seed": np.int64(3)})
    assert with_numpy == fit_supernet(classifier(), data(), **{**QUIET, "seed": 3})
    assert type(with_numpy.config["seed"]) is int  # recorded as a plain int (result.json holds it)


def test_seed_none_draws_a_seed_records_it_and_that_seed_repeats_the_search():
    drawn = fit_supernet(classifier(), data(), **{**QUIET, "seed": None})
    seed = drawn.config["seed"]
    assert type(seed) is int and 0 <= seed < 2**32
    assert fit_supernet(classifier(), data(), **{**QUIET, "seed": seed}) == drawn


@pytest.mark.parametrize("seed", ["3", 2.5, True, [1]])
def test_a_seed_that_is_not_an_integer_is_refused_naming_seed(seed):
    with pytest.raises(TypeError, match=r"seed must be an integer \(int or numpy integer\), got"):
        fit_supernet(classifier(), data(), **{**QUIET, "seed": seed})


def test_a_negative_seed_is_refused_naming_seed():
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63\), got -1"):
        fit_supernet(classifier(), data(), **{**QUIET, "seed": -1})


def test_numpy_integer_seeds_work_for_executors_and_evolution():
    from search import evolve

    space = classifier()
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            SupernetExecutor(space, seed=np.int64(4)).state_dict().values(),
            SupernetExecutor(space, seed=4).state_dict().values(),
        )
    )
    result = fit_supernet(space, data(), **QUIET)
    found = evolve(result, data(), population=2, generations=1, seed=np.int32(1), top=1, progress=False)
    assert found[0].config["evolution"]["seed"] == 1
    with pytest.raises(TypeError, match="seed must be an integer"):
        evolve(result, data(), population=2, generations=1, seed="1", progress=False)


# issue 26.8: optimizer settings are checked, naming the setting


@pytest.mark.parametrize(
    "optim, error, message",
    [
        ({"weight_lr": "fast"}, TypeError, r"optim setting weight_lr must be a number >= 0 \(0: the weights stay"),
        ({"weight_lr": -1}, ValueError, r"optim setting weight_lr must be a number >= 0 .*, got -1"),
        ({"arch_lr": -1e-3}, ValueError, r"optim setting arch_lr must be a number >= 0 \(0: the alphas stay frozen"),
        ({"weight_momentum": 1.5}, ValueError, r"optim setting weight_momentum must be a number in \[0, 1\]"),
        ({"weight_decay": float("nan")}, ValueError, r"optim setting weight_decay must be a number >= 0, got nan"),
        ({"grad_clip": True}, TypeError, r"optim setting grad_clip must be a number >= 0"),
        ({"arch_betas": (0.5,)}, ValueError, r"optim setting arch_betas must be two numbers in \[0, 1\)"),
    ],
)
def test_an_optimizer_setting_of_the_wrong_type_or_range_is_refused_naming_it(optim, error, message):
    from search import BilevelConfig

    with pytest.raises(error, match=message):
        fit_supernet(classifier(), data(), optim=optim, **QUIET)
    with pytest.raises(error, match=message):
        BilevelConfig(**optim)


def test_valid_optimizer_settings_pass_and_numpy_numbers_are_stored_as_floats(tmp_path):
    optim = {"arch_lr": np.float32(0.01), "grad_clip": None, "arch_betas": (np.float64(0.5), 0.9)}
    result = fit_supernet(classifier(), data(), optim=optim, **QUIET)
    assert result.config["optim"]["grad_clip"] is None
    assert type(result.config["optim"]["arch_lr"]) is float and result.config["optim"]["arch_betas"] == (0.5, 0.9)
    result.save(tmp_path / "r")  # JSON-ready
    assert SearchResult.load(tmp_path / "r").config["optim"]["arch_lr"] == pytest.approx(0.01)


# issue 26.9: the device is checked before anything runs, saying which devices there are


def test_cuda_without_cuda_is_refused_up_front_naming_the_devices_there_are(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda' asks for CUDA, but .*; available here: cpu"):
        fit_supernet(classifier(), data(), device="cuda", **QUIET)


def test_a_cuda_device_index_this_machine_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"device='cuda:3': there is no CUDA device 3; available here: cpu, cuda:0"):
        fit_supernet(classifier(), data(), device="cuda:3", **QUIET)


@pytest.mark.parametrize("device", ["gpu", "meta"])
def test_a_device_name_torch_does_not_know_or_the_meta_device_is_refused(device):
    with pytest.raises(ValueError, match=rf"device='{device}'.*available here: cpu"):
        fit_supernet(classifier(), data(), device=device, **QUIET)


# issue 27.12: data and weights on the meta device are refused, naming them


def test_data_on_the_meta_device_is_refused_naming_it():
    x, y = data()
    with pytest.raises(ValueError, match=r"train x: a tensor on the meta device \(shape \(64, 2, 16\)\) has no values"):
        fit_supernet(classifier(), (x.to("meta"), y.to("meta")), **QUIET)
    with pytest.raises(ValueError, match=r"val inputs: a tensor on the meta device"):
        fit_supernet(classifier(), (x, y), TensorDataset(x.to("meta"), y), **QUIET)


def test_an_initial_state_on_the_meta_device_is_refused_naming_the_weight():
    state = {k: v.to("meta") for k, v in SupernetExecutor(classifier()).state_dict().items()}
    with pytest.raises(ValueError, match=r"initial_state\['space_0\.Conv1d_0\.weight'\]: a tensor on the meta device"):
        fit_supernet(classifier(), data(), initial_state=state, **QUIET)


# issue 26.5: the history always ends at the last step, and confidence is judged on it


def test_record_every_beyond_the_steps_still_records_the_last_step_and_judges_it():
    result = fit_supernet(
        classifier(), data(), strategy="darts", optim={"arch_lr": 0.05}, record_every=1000, **{**QUIET, "seed": 2}
    )
    assert result.history["steps"] == [0, 4]  # one epoch over the 32-sample half of train, at batch size 8
    selected = result.architecture["space_0.ChoiceOp_0.choice"]
    final = result.history["probabilities"]["space_0.ChoiceOp_0.choice"][-1]
    assert final == result.probabilities["space_0.ChoiceOp_0.choice"] and selected == 1 and final[1] > final[0]
    # judged on the final state: the selection is the winner there, not "not the most probable option"
    assert result.confidence["space_0.ChoiceOp_0.choice"]["stable_since"] is not None

"""Bad input fails early, with an error naming the culprit (one test per kind of mistake)."""

import contextlib
import errno
import functools
import os
import shutil
import subprocess

import pytest
import torch

from ops import Add, Flatten, MaxPooling, Relu, conv1d, linear
from search import SearchResult, fit_supernet
from supernet import CategoricalParameter, ChoiceOp, IntScalarParameter, Op, SupernetExecutor, Tensor, search_space
from supernet.export_module import export_module

from helpers import classifier, resume_space, threshold_data

QUIET = dict(epochs=1, batch_size=8, progress=False, on_undecided="ignore")  # one epoch is undecided


def data(n=32, classes=3, shape=(2, 16)):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_choice_options_with_mismatched_output_shapes():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x, same_shape=True):
        return ChoiceOp(
            functools.partial(conv1d, out_channels=4, kernel_size=3),
            MaxPooling(3, 1, 1),
            names=["conv", "pool"],
            same_shape=same_shape,
        )(x)

    with pytest.raises(
        ValueError, match=r"ChoiceOp space_0\.ChoiceOp_0: its options can never have the same output shape"
    ):
        space(x)  # refused when built
    net = space(x, same_shape=False)  # declared one-path: the supernet, which mixes the options, refuses it
    message = r"ChoiceOp space_0\.ChoiceOp_0: options must have equal output shapes to be mixed, got conv: \(1, 4, 16\), pool: \(1, 2, 16\)"
    with pytest.raises(ValueError, match=message):
        SupernetExecutor(net)
    with pytest.raises(ValueError, match=message):
        fit_supernet(net, data(), loss=torch.nn.functional.mse_loss, **QUIET)


def test_empty_choice_op():
    with pytest.raises(ValueError, match="ChoiceOp needs at least one option, got none"):
        ChoiceOp()


def test_parameter_value_outside_its_domain():
    width = IntScalarParameter(4, 16, step_size=4, name="width")
    with pytest.raises(ValueError, match=r"parameter width: 6 is outside its domain \[4, 16\] step 4"):
        width.set_current(6)
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))
    net = conv1d(x, 2, CategoricalParameter([1, 3], name="kernel"))
    (pid,) = net.parametrization()
    with pytest.raises(ValueError, match=rf"parameter {pid}: 5 is outside its domain choices \[1, 3\]"):
        net.set_parametrization({pid: 5})
    assert net.parametrization()[pid].current_value == 1  # nothing changed


def test_set_parametrization_with_an_unknown_key():
    net = classifier()
    with pytest.raises(
        KeyError,
        match=r"unknown parameter id\(s\) \['space_0\.ChoiceOp_0\.choise'\]; known ids: \['space_0\.ChoiceOp_0\.choice'\]",
    ):
        net.set_parametrization({"space_0.ChoiceOp_0.choise": 1})


def test_duplicate_ids():
    a, b = Tensor("x", (1, 4), ("N", "C")), Tensor("x", (1, 4), ("N", "C"))
    with pytest.raises(ValueError, match=r"duplicate node id 'x': Tensor\(x\) and Tensor\(x\)"):
        SupernetExecutor(Add()(a, b))


def test_operand_that_is_not_a_node():
    with pytest.raises(
        TypeError,
        match=r"Relu: operand 0 is Tensor of shape \(8, 2, 16\), not a graph node .*declare inputs as supernet\.Tensor",
    ):
        Relu()(torch.zeros(8, 2, 16))


def test_data_whose_shape_does_not_match_the_input_tensor_fails_before_training():
    calls = []

    def loss(logits, y):
        calls.append(1)
        return torch.nn.functional.cross_entropy(logits, y)

    with pytest.raises(
        ValueError,
        match=r"train data does not fit the search space: input x: axis 'L' must have size 16, got shape \(8, 2, 15\)",
    ):
        fit_supernet(classifier(), data(shape=(2, 15)), loss=loss, **QUIET)
    with pytest.raises(ValueError, match=r"val data does not fit the search space: input x expects 3 dims"):
        fit_supernet(classifier(), data(), data(shape=(32,)), loss=loss, **QUIET)
    assert not calls  # nothing was trained


def test_labels_out_of_range_for_the_output():
    x, y = data()
    y[5] = 3
    with pytest.raises(
        ValueError,
        match=r"train label 3 \(sample 5\) is out of range: the space's output \(1, 3\) has 3 classes .*labels must lie in \[0, 2\]",
    ):
        fit_supernet(classifier(), (x, y), data(), **QUIET)
    y[5] = -1
    with pytest.raises(ValueError, match=r"val label -1 \(sample 5\) is out of range"):
        fit_supernet(classifier(), data(), (x, y), **QUIET)
    dataset = LabelledList(x, y)  # not tensors: the first batch is checked
    with pytest.raises(ValueError, match=r"train label -1 is out of range"):
        fit_supernet(classifier(), dataset, data(), **{**QUIET, "batch_size": 32})


class LabelledList(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_validation_split_too_small_for_one_batch():
    with pytest.raises(
        ValueError,
        match=r"val=None splits train's 13 samples into halves of 6 \(weights\) and 7 \(architecture\), fewer than one batch of 8",
    ):
        fit_supernet(classifier(), data(n=13), **QUIET)
    with pytest.raises(ValueError, match=r"val has 5 samples, fewer than one batch of 8"):
        fit_supernet(classifier(), data(), data(n=5), **QUIET)


def test_export_of_an_architecture_naming_an_unknown_switch_or_index():
    space = classifier()
    result = fit_supernet(space, data(), **QUIET)
    (sid,) = result.architecture
    unknown = SearchResult(**{**vars(result), "architecture": {"space_0.ChoiceOp_7.choice": 0}})
    with pytest.raises(
        KeyError,
        match=r"unknown switch or parameter 'space_0\.ChoiceOp_7\.choice'; known switches: \['space_0\.ChoiceOp_0\.choice'\]",
    ):
        unknown.export()
    out_of_range = SearchResult(**{**vars(result), "architecture": {sid: 2}})
    with pytest.raises(ValueError, match=rf"architecture picks option 2 for {sid}, which allows \[0, 1\]"):
        out_of_range.export()


def test_a_space_without_choice_op_has_nothing_to_search():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def fixed(x):
        return linear(Flatten()(x), 3)

    with pytest.raises(
        ValueError, match=r"the space ending at fixed_0\.Linear_0 has no ChoiceOp: there is no architecture to search"
    ):
        fit_supernet(fixed(x), data(), **QUIET)


class _Square(Op):
    """A user op that declares no torch code (no `source()`)."""

    def _forward_implementation(self, x):
        return x * x


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_scripting_an_architecture_with_an_op_without_source_names_the_op():
    x_in = Tensor("x", (2, 1, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        return _Square()(conv1d(x, 2, 3))

    model = export_module(space(x_in), seed=0)
    with pytest.raises(
        TypeError,
        match=r"op space_0\._Square_0 \(_Square\) declares no torch code \(`Op\.source`\), "
        r"so its architecture cannot be scripted \(torch\.jit\.script\); give the op a `source` method",
    ):
        torch.jit.script(model)
    exported = torch.export.export(model, (torch.randn(2, 1, 16),))  # tracing runs the op as it is
    x = torch.randn(2, 1, 16)
    assert torch.equal(exported.module()(x), model(x))


@pytest.mark.parametrize("name, expected", [("Darts", "darts"), ("drnas ", "drnas"), (" GDAS\n", "gdas")])
def test_strategy_names_are_case_insensitive_and_whitespace_stripped(name, expected):
    from search.strategies import get_strategy

    assert get_strategy(name).name == expected


def test_an_unknown_strategy_name_is_refused_naming_the_closest_one():
    from search.strategies import get_strategy

    with pytest.raises(ValueError, match=r"unknown strategy 'drnsa'; did you mean 'drnas'\? known: \["):
        get_strategy("drnsa")
    with pytest.raises(ValueError, match=r"unknown strategy 'zzz'; known: \["):
        get_strategy("zzz")
    with pytest.raises(TypeError, match=r"strategy must be a name \(\[.*\]\) or a Strategy object, got int"):
        get_strategy(3)


# issue 26.12 / 27.11: checkpoints on a full or read-only disk, and Ctrl-C during a search


def _checkpointed(checkpoint_dir, callbacks=(), resume=False, epochs=3):
    return fit_supernet(
        resume_space(),
        threshold_data(48),
        epochs=epochs,
        batch_size=16,
        seed=3,
        progress=False,
        on_undecided="ignore",
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        callbacks=list(callbacks),
    )


@contextlib.contextmanager
def _small_tmpfs(where, options="size=256k"):
    """A small tmpfs mounted at `where` (the test is skipped where mounting is not allowed)."""
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()[:100]})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_checkpoint_write_failing_midway_names_the_folder_and_cause_and_leaves_nothing_partial(tmp_path, monkeypatch):
    real_save, writes = torch.save, []

    def failing_second_save(obj, file, *args, **kwargs):
        writes.append(file)
        if len(writes) == 2:  # the checkpoint of epoch 1: half written, then the disk is full
            file.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_second_save)
    with pytest.raises(
        OSError,
        match=rf"cannot write checkpoint epoch_0001\.pt in {tmp_path}: No space left on device; nothing partial",
    ) as raised:
        _checkpointed(tmp_path)
    assert raised.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0000.pt"]  # no temporary file, epoch 0 intact
    monkeypatch.setattr(torch, "save", real_save)
    assert _checkpointed(tmp_path, resume=True) == _checkpointed(tmp_path / "again")


def test_a_checkpoint_on_a_full_disk_names_the_folder_and_leaves_nothing_partial(tmp_path):
    with _small_tmpfs(tmp_path / "small") as small:
        (small / "filler").write_bytes(b"\0" * (256 - 16) * 1024)  # 16 KiB left; a checkpoint is about 29 KiB
        folder = small / "checkpoints"
        with pytest.raises(OSError, match=rf"cannot write checkpoint epoch_0000\.pt in {folder}: .*nothing partial"):
            _checkpointed(folder)
        assert list(folder.iterdir()) == []


def test_a_checkpoint_dir_that_cannot_be_written_is_refused_before_training(tmp_path):
    trained = []
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OSError, match=rf"checkpoint_dir {tmp_path / 'a_file' / 'c'} is not writable: Not a directory"):
        _checkpointed(tmp_path / "a_file" / "c", callbacks=[trained.append])
    with _small_tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        with pytest.raises(OSError, match=rf"checkpoint_dir {read_only} is not writable: Read-only file system"):
            _checkpointed(read_only, callbacks=[trained.append])
    assert trained == []  # refused before the first epoch


def test_ctrl_c_during_a_search_names_the_checkpoint_to_resume_from(tmp_path):
    def interrupt(state):  # Ctrl-C in epoch 1 (its callbacks run before its checkpoint)
        if state["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as raised:
        _checkpointed(tmp_path, [interrupt])
    message = str(raised.value)
    assert f"search interrupted in epoch 1; the last complete checkpoint is {tmp_path / 'epoch_0000.pt'}" in message
    assert "with resume=True" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0000.pt"]
    assert _checkpointed(tmp_path, resume=True) == _checkpointed(tmp_path / "uninterrupted")
    with pytest.raises(KeyboardInterrupt, match="it had no checkpoint_dir, so there is nothing to resume from"):
        _checkpointed(None, [interrupt])

"""The saved result: a format version, atomic writes that leave nothing partial, and hand edits or
architectures the space does not allow refused where they enter (issues 26.4, 26.12, 27.2)."""

import json
import shutil
import subprocess

import pytest
import torch

from ops import AvgPooling, Flatten, Relu, conv1d, linear
from search import SearchResult, fit_supernet
from search.result_file import FORMAT_VERSION
from supernet import CategoricalParameter, ChoiceOp, Tensor, search_space

from helpers import noise_data


def space():
    @search_space
    def net(x):
        h = Relu()(conv1d(x, CategoricalParameter([4, 8], name="width"), 3))
        h = ChoiceOp(
            lambda v: Relu()(conv1d(v, v.shape()[1], 3)), AvgPooling(3, stride=1, padding=1), names=["conv", "pool"]
        )(h)
        return linear(Flatten()(h), 3)

    return net(Tensor("x", (1, 2, 16), ("N", "C", "L")))


@pytest.fixture(scope="module")
def result():
    return fit_supernet(space(), noise_data(32), epochs=1, batch_size=8, seed=0, progress=False, on_undecided="ignore")


def switch_of(result, kind):
    return next(k for k in result.architecture if (kind in k))


def test_saved_files_carry_the_format_version_and_a_newer_one_is_refused(result, tmp_path):
    result.save(tmp_path)
    payload = json.loads((tmp_path / "result.json").read_text())
    assert payload["format_version"] == FORMAT_VERSION == 2
    assert payload["weights"]["bytes"] == (tmp_path / "supernet.pt").stat().st_size
    assert SearchResult.load(tmp_path, space=space()) == result
    payload["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "result.json").write_text(json.dumps(payload))
    with pytest.raises(
        ValueError,
        match=rf"{tmp_path / 'result.json'} was written by a newer version of supernet "
        rf"\(result format {FORMAT_VERSION + 1}",
    ):
        SearchResult.load(tmp_path)


def test_a_version_1_file_without_the_version_still_loads(result, tmp_path):
    result.save(tmp_path)
    payload = json.loads((tmp_path / "result.json").read_text())
    del payload["format_version"], payload["weights"]
    (tmp_path / "result.json").write_text(json.dumps(payload))
    assert SearchResult.load(tmp_path, space=space()) == result


def test_an_edited_option_name_or_junk_spec_is_refused_naming_the_file_and_switch(result, tmp_path):
    result.save(tmp_path)
    original = json.loads((tmp_path / "result.json").read_text())
    sid = switch_of(result, "ChoiceOp")
    edited = json.loads(json.dumps(original))
    edited["chosen_options"][sid] = "pool" if result.chosen_options[sid] == "conv" else "conv"
    (tmp_path / "result.json").write_text(json.dumps(edited))
    with pytest.raises(ValueError, match=rf"result.json: switch {sid} chooses .* but chosen_options says .* disagree"):
        SearchResult.load(tmp_path)
    junk = {**original, "spec": {"architecture": {"x": 1}, "nodes": []}}
    (tmp_path / "result.json").write_text(json.dumps(junk))
    with pytest.raises(ValueError, match="its spec does not describe its architecture"):
        SearchResult.load(tmp_path)


def test_with_the_space_an_index_out_of_range_or_edited_labels_are_refused(result, tmp_path):
    result.save(tmp_path)
    original = json.loads((tmp_path / "result.json").read_text())
    sid = switch_of(result, "ChoiceOp")
    out_of_range = json.loads(json.dumps(original))
    out_of_range["architecture"][sid] = 7
    del out_of_range["chosen_options"], out_of_range["spec"]
    (tmp_path / "result.json").write_text(json.dumps(out_of_range))
    with pytest.raises(ValueError, match=rf"result.json: architecture picks option 7 for {sid}, which allows \[0, 1\]"):
        SearchResult.load(tmp_path, space=space())
    relabelled = json.loads(json.dumps(original))
    relabelled["option_names"][sid] = ["pool", "conv"]
    del relabelled["chosen_options"]
    (tmp_path / "result.json").write_text(json.dumps(relabelled))
    with pytest.raises(
        ValueError, match=rf"the option names of {sid} are \['pool', 'conv'\], the space's are \['conv', 'pool'\]"
    ):
        SearchResult.load(tmp_path, space=space())


def test_with_architecture_validates_indices_and_values(result):
    width, sid = switch_of(result, "width"), switch_of(result, "ChoiceOp")
    with pytest.raises(ValueError, match=rf"picks value 1 for {width}, which allows \[4, 8\]"):
        result.with_architecture({width: 1})
    with pytest.raises(ValueError, match=rf"picks option 2 for {sid}, which allows \[0, 1\]"):
        result.with_architecture({sid: 2})
    detached = SearchResult(**{**result.__dict__, "space": None})
    with pytest.raises(ValueError, match=rf"picks 1 for {width}, which allows \[4, 8\]"):
        detached.with_architecture({width: 1})
    assert result.with_architecture({width: 8}).chosen_options[width] == "width=8"


def test_a_writer_failing_midway_leaves_the_previous_result_and_no_partial_file(result, tmp_path, monkeypatch):
    result.save(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_save(obj, f):
        f.write(b"half a file")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(
        OSError,
        match=rf"cannot save the result to {tmp_path}: writing supernet.pt failed "
        r"\(\[enforce fail.*nothing was changed",
    ):
        result.save(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary folder either


def test_weights_from_another_save_are_refused(result, tmp_path):
    result.save(tmp_path / "a")
    other = fit_supernet(space(), noise_data(32), epochs=2, batch_size=8, seed=1, progress=False, on_undecided="ignore")
    other.save(tmp_path / "b")
    shutil.copy(tmp_path / "a" / "result.json", tmp_path / "b" / "result.json")
    state = other.supernet_state
    torch.save({k: v for k, v in list(state.items())[:-1]}, tmp_path / "b" / "supernet.pt")
    with pytest.raises(ValueError, match="is corrupt or not the weight file saved with"):
        SearchResult.load(tmp_path / "b")


def test_a_full_disk_names_the_path_and_leaves_nothing_partial(result, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()[:100]})")
    try:
        big = SearchResult(**{**result.__dict__, "supernet_state": {"w": torch.zeros(64, 1024)}})  # 256 KiB
        with pytest.raises(OSError, match=rf"cannot save the result to {mount / 'r'}: writing supernet.pt failed"):
            big.save(mount / "r")
        assert list((mount / "r").iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=True)

"""`./run.sh` (the README's two commands): installs once, pins the CPU torch, passes options through.

A stand-in `python` records every call, so the script's logic is checked without a network or a
real install; the real fresh-clone run is measured by hand (README)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/bin/sh
echo "$@" >> "$CALLS"
case "$1" in -c) echo "$VENV";; esac
"""


@pytest.fixture
def project(tmp_path):
    """run.sh and setup.cfg in a scratch folder, with a stand-in virtual environment."""
    shutil.copy(ROOT / "run.sh", tmp_path / "run.sh")
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    shutil.copy(ROOT / "constraints.txt", tmp_path / "constraints.txt")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def run(project: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    calls = project / "calls.txt"
    calls.unlink(missing_ok=True)
    environment = {
        "PATH": os.environ["PATH"],
        "CALLS": str(calls),
        "VENV": str(project / "venv"),
        "SUPERNET_VENV": str(project / "venv"),
        **env,
    }
    done = subprocess.run(
        ["bash", str(project / "run.sh"), *args], env=environment, capture_output=True, text=True, timeout=60
    )
    return done, calls.read_text().splitlines() if calls.exists() else []


def installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("-m pip install")]


def test_first_run_installs_cpu_torch_pin_then_project_then_runs_the_tests(project):
    done, calls = run(project, "test", "-x", "-k", "resume")
    assert done.returncode == 0, done.stderr
    assert installs(calls) == [
        "-m pip install --quiet torch==2.13.0 -c constraints.txt",
        "-m pip install --quiet -e .[test] -c constraints.txt",
    ]
    assert calls[-1] == "-m pytest -q tests -x -k resume"


def test_second_run_installs_nothing(project):
    run(project, "test")
    done, calls = run(project, "test")
    assert done.returncode == 0, done.stderr
    assert installs(calls) == [] and calls[-1] == "-m pytest -q tests"


def test_demo_installs_without_test_extras_and_passes_options(project):
    done, calls = run(project, "demo", "--epochs", "2")
    assert installs(calls)[-1] == "-m pip install --quiet -e . -c constraints.txt"
    assert calls[-1] == "-m search.demo --epochs 2"
    _, again = run(project, "demo")
    assert installs(again) == []


def test_changed_requirements_install_again(project):
    run(project, "demo")
    with open(project / "setup.cfg", "a") as f:
        f.write("\n# a new requirement\n")
    _, calls = run(project, "demo")
    assert len(installs(calls)) == 2


def test_torch_spec_and_index_url_are_honoured(project):
    _, calls = run(project, "demo", TORCH_SPEC="torch==2.14.1", TORCH_INDEX_URL="https://example.invalid/cpu")
    assert (
        installs(calls)[0]
        == "-m pip install --quiet torch==2.14.1 --index-url https://example.invalid/cpu -c constraints.txt"
    )


def test_no_install_and_unknown_verb(project):
    _, calls = run(project, "test", SUPERNET_NO_INSTALL="1")
    assert installs(calls) == []
    done, _ = run(project, "train")
    assert done.returncode == 2 and "usage" in done.stderr


def test_no_venv_uses_the_active_python(project, tmp_path):
    bin_dir = tmp_path / "own"
    bin_dir.mkdir()
    shutil.copy(project / "venv" / "bin" / "python", bin_dir / "python3")
    shutil.rmtree(project / "venv" / "bin")
    done, calls = run(project, "demo", SUPERNET_NO_VENV="1", PATH=f"{bin_dir}:{os.environ['PATH']}")
    assert done.returncode == 0, done.stderr
    assert calls[-1] == "-m search.demo" and not (project / "venv" / "bin").exists()


def test_ci_runs_the_readme_test_command():
    assert "exec ./run.sh test" in (ROOT / ".ci" / "run").read_text()
    assert "./run.sh test" in (ROOT / "README.md").read_text()


def test_the_lock_pins_the_test_tools_and_a_changed_lock_installs_again(project):
    """Every install goes through constraints.txt, which pins the test tools (a fresh venv once got a newer
    pytest than CI had, and a test broke); editing the lock is a new install."""
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {"pytest", "hypothesis", "ruff"} <= set(pins) and "torch" not in pins
    run(project, "test")
    with open(project / "constraints.txt", "a") as f:
        f.write("pytest==0.0.1\n")
    _, calls = run(project, "test")
    assert installs(calls) and all(c.endswith("-c constraints.txt") for c in installs(calls))


def test_an_install_records_the_versions_it_installed(project):
    done, calls = run(project, "test")
    versions = project / "venv" / "supernet-versions.txt"
    assert "-m pip freeze --exclude-editable" in calls and versions.exists()
    assert f"installed versions recorded in {versions}" in done.stdout
    _, again = run(project, "test")
    assert "-m pip freeze --exclude-editable" not in again  # nothing installed, nothing to record


def test_docs_installs_the_docs_extras_and_builds_the_site_strictly(project):
    done, calls = run(project, "docs", "--quiet")
    assert done.returncode == 0, done.stderr
    assert installs(calls) == [
        "-m pip install --quiet torch==2.13.0 -c constraints.txt",
        "-m pip install --quiet -e .[docs] -c constraints.txt",
    ]
    assert calls[-1] == "-m mkdocs build --strict --site-dir build/site --quiet"
    _, again = run(project, "docs")
    assert installs(again) == [] and again[-1] == "-m mkdocs build --strict --site-dir build/site"


def test_the_docs_extra_is_pinned_ci_builds_the_site_and_git_ignores_it():
    pins = {
        line.split("==")[0]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    tools = {"mkdocs", "mkdocs-material", "mkdocstrings-python"}
    assert tools <= pins
    extra = (ROOT / "setup.cfg").read_text().split("docs =", 1)[1].split("\n\n", 1)[0].split()
    assert set(extra) == tools
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("./run.sh docs") < ci.index("exec ./run.sh test")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot ask git what it ignores")
    ignored = subprocess.run(["git", "check-ignore", "-q", "build/site/index.html"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "the site's build folder must be ignored by git"


def test_lint_installs_the_test_extras_and_runs_ruff_check_then_format_check(project):
    done, calls = run(project, "lint")
    assert done.returncode == 0, done.stderr
    assert installs(calls)[-1] == "-m pip install --quiet -e .[test] -c constraints.txt"
    assert calls[-2:] == ["-m ruff check .", "-m ruff format --check ."]
    assert "./run.sh lint" in (ROOT / ".ci" / "run").read_text()

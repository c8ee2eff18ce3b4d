"""The documentation site (docs/, mkdocs.yml): its runnable code blocks run, and it builds with --strict.

A fenced Python block is runnable when the line before its fence is `<!-- runnable -->`
(docs/contributing.md). The blocks of one page run in order in one namespace, in a scratch
folder, each test page by page; any warning they raise fails the test (the docs show quiet code).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
# pages whose examples the issue names (the search space, a fit_supernet call, an export): each must keep some
REQUIRED = {"search-spaces.md": 6, "getting-started.md": 1, "export.md": 2}


@dataclass(frozen=True)
class Block:
    """One runnable fenced block: its page, the line of its fence (1-based), its language and code."""

    page: str
    line: int
    lang: str
    code: str


def runnable_blocks(text: str, page: str = "<text>") -> list[Block]:
    """The runnable blocks of one markdown text, in order. A marker not followed by a fence, or an
    unclosed fence, is an error naming the page and line."""
    lines = text.splitlines()
    blocks, i, pending = [], 0, None
    while i < len(lines):
        line = lines[i]
        opening = FENCE.match(line)
        if line.strip() == MARKER:
            pending = i + 1
        elif opening:
            fence, indent = opening["fence"], len(opening["indent"])
            end = next(
                (
                    j
                    for j in range(i + 1, len(lines))
                    if lines[j].strip().startswith(fence) and set(lines[j].strip()) == {fence[0]}
                ),
                None,
            )
            if end is None:
                raise ValueError(f"{page}:{i + 1}: the fenced block is never closed")
            if pending is not None:
                body = "\n".join(row[indent:] for row in lines[i + 1 : end])
                blocks.append(Block(page, i + 1, opening["lang"], body))
                pending = None
            i = end
        elif line.strip() and pending is not None:
            raise ValueError(f"{page}:{pending}: {MARKER} must stand right before a fenced block")
        i += 1
    if pending is not None:
        raise ValueError(f"{page}:{pending}: {MARKER} is not followed by a fenced block")
    return blocks


def pages() -> dict[str, list[Block]]:
    found = {}
    for path in sorted(DOCS.rglob("*.md")):
        name = path.relative_to(DOCS).as_posix()
        found[name] = runnable_blocks(path.read_text(), name)
    return found


PAGES = {name: blocks for name, blocks in pages().items() if blocks}


def test_the_collector_finds_marked_blocks_in_order_and_refuses_a_stray_marker():
    text = "\n".join(
        [
            "# page",
            MARKER,
            "```python",
            "x = 1",
            "```",
            "",
            "```python",
            "not run",
            "```",
            MARKER,
            "",
            "~~~python",
            "y = x + 1",
            "~~~",
            "- a list",
            "    " + MARKER,
            "    ```python",
            "    z = 3",
            "    ```",
        ]
    )
    blocks = runnable_blocks(text, "p.md")
    assert [(b.line, b.code) for b in blocks] == [(3, "x = 1"), (12, "y = x + 1"), (17, "z = 3")]
    with pytest.raises(ValueError, match="p.md:2"):
        runnable_blocks("text\n" + MARKER + "\nprose, no fence\n```python\nx\n```", "p.md")
    with pytest.raises(ValueError, match="never closed"):
        runnable_blocks(MARKER + "\n```python\nx = 1\n", "p.md")


def test_the_pages_the_issue_names_keep_their_runnable_examples():
    counts = {name: len(blocks) for name, blocks in PAGES.items()}
    for name, least in REQUIRED.items():
        assert counts.get(name, 0) >= least, f"docs/{name} has {counts.get(name, 0)} runnable blocks, want >= {least}"
    for blocks in PAGES.values():
        for block in blocks:
            assert block.lang == "python", f"docs/{block.page}:{block.line}: a runnable block must be python"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_runnable_blocks_of_the_page_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the examples write land in a scratch folder
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace = {"__name__": f"docs.{page}"}
    try:
        for block in PAGES[page]:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    exec(compile(block.code, f"docs/{page}:{block.line}", "exec"), namespace)  # noqa: S102
                except Exception as error:
                    raise AssertionError(f"docs/{page}, block at line {block.line} failed: {error!r}") from error
    finally:
        torch.set_num_threads(threads)


def _docs_tools_missing() -> list[str]:
    modules = {
        "mkdocs": "mkdocs",
        "mkdocs-material": "material",
        "mkdocstrings": "mkdocstrings",
        "mkdocstrings-python": "mkdocstrings_handlers",
    }
    return [package for package, module in modules.items() if importlib.util.find_spec(module) is None]


def test_the_site_builds_with_strict(tmp_path):
    missing = _docs_tools_missing()
    if missing:
        pytest.skip(
            f"the doc tools are not installed ({', '.join(missing)}): `pip install -e .[docs]` or `./run.sh docs`"
        )
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    api = (site / "api" / "search" / "index.html").read_text()
    assert 'id="search.fit_supernet"' in api  # the reference is generated from the docstrings
    assert (site / "channels_last_conv_bug" / "index.html").exists()

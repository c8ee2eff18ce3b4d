#!/usr/bin/env bash
# The two commands of the README, each doing its own set-up on a fresh machine:
#
#   ./run.sh demo [demo options]    install (once), then a real search on MNIST-1D -> runs/demo/
#   ./run.sh test [pytest options]  install (once, with the test extras), then the test suite
#   ./run.sh docs [mkdocs options]  install (once, with the docs extras), then build the documentation
#                                   site with `mkdocs build --strict` into build/site/
#
# Set-up: a virtual environment in .venv/ beside this file holding the CPU build of torch (pinned,
# so no CUDA wheels are pulled) and this project installed editable, with its test extras for
# `test`. A second run finds the environment up to date (a stamp records what was installed) and
# installs nothing.
#
# Settings (environment variables):
#   SUPERNET_VENV=DIR     the virtual environment to create or reuse (default: .venv here)
#   SUPERNET_NO_VENV=1    use the Python already active (your own environment); still installs
#                         what is missing into it, unless SUPERNET_NO_INSTALL=1
#   SUPERNET_NO_INSTALL=1 install nothing, just run
#   TORCH_SPEC=...        the torch requirement (default torch==2.13.0, a CPU build here);
#                         e.g. TORCH_SPEC=torch for a GPU build
#   TORCH_INDEX_URL=URL   where pip looks for torch, e.g. https://download.pytorch.org/whl/cpu on a
#                         machine whose default index serves CUDA builds
#   PYTHON=python3.12     the interpreter that creates the environment (default python3)
#
# Every other package is installed at the version constraints.txt pins (the versions CI ran), so a
# fresh environment gets the same pytest, ruff... as the last green run; after an install the
# versions actually installed are written to <venv>/supernet-versions.txt (and named on stdout).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

usage() { echo "usage: $0 demo [python -m search.demo options] | test [pytest options] | lint | docs [mkdocs build options]" >&2; exit 2; }
[ $# -ge 1 ] || usage
verb="$1"; shift
case "$verb" in
  demo) extras="" ;;
  test|lint) extras="[test]" ;;
  docs) extras="[docs]" ;;
  *) usage ;;
esac

torch_spec="${TORCH_SPEC:-torch==2.13.0}"

if [ "${SUPERNET_NO_VENV:-0}" = 1 ]; then
  py="$(command -v "${PYTHON:-python3}")"
else
  venv="${SUPERNET_VENV:-$here/.venv}"
  if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
      || { echo "supernet needs Python 3.10 or newer (${PYTHON:-python3} is older); set PYTHON=..." >&2; exit 1; }
    echo "creating the virtual environment $venv"
    "${PYTHON:-python3}" -m venv "$venv"
  fi
  py="$venv/bin/python"
fi

# What an install provides, so that a second run can tell it is already there.
wanted="$(printf '%s\n' "$torch_spec" "${TORCH_INDEX_URL:-}" "$extras" | cat - setup.cfg constraints.txt | cksum | cut -d' ' -f1)"
stamp="$("$py" -c 'import sys; print(sys.prefix)')/.supernet-installed"
have() { [ -f "$stamp" ] && grep -qx "$1" "$stamp"; }

if [ "${SUPERNET_NO_INSTALL:-0}" != 1 ] && ! have "$wanted"; then
  echo "installing $torch_spec and supernet$extras into $("$py" -c 'import sys; print(sys.prefix)')"
  index=(); [ -n "${TORCH_INDEX_URL:-}" ] && index=(--index-url "$TORCH_INDEX_URL")
  "$py" -m pip install --quiet "$torch_spec" "${index[@]}" -c constraints.txt
  "$py" -m pip install --quiet -e ".$extras" -c constraints.txt
  versions="$("$py" -c 'import sys; print(sys.prefix)')/supernet-versions.txt"
  "$py" -m pip freeze --exclude-editable >"$versions"
  echo "installed versions recorded in $versions"
  # Each verb's install is recorded apart: `test` after `demo` lets pip add only the test extras.
  echo "$wanted" >>"$stamp"
fi

case "$verb" in
  demo) exec "$py" -m search.demo "$@" ;;
  test) exec "$py" -m pytest -q tests "$@" ;;
  lint) "$py" -m ruff check . && exec "$py" -m ruff format --check . ;;
  docs) NO_MKDOCS_2_WARNING=1 exec "$py" -m mkdocs build --strict --site-dir build/site "$@" ;;
esac

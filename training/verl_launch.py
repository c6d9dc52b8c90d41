"""Run verl's GRPO trainer as a subprocess of its own venv, and read what it logs.

verl lives in `.venvs/verl` (made by training/setup_verl_venv.sh): its hydra/omegaconf pins
antlr4 4.9, which breaks Dagster, so it never shares our venv. Everything here is plain
subprocess + files, so an orchestrator (Dagster Pipes) can wrap `verl_command` as it likes.

Metrics: with `trainer.logger=[console,file]` verl's file logger appends one JSON line per step,
`{"step": N, "data": {"actor/entropy": ..., "critic/score/mean": ...}}`, to the path in the
VERL_FILE_LOGGER_PATH environment variable, which `verl_env` points at
`<output_dir>/verl_metrics.jsonl`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from training.verl_config import VerlGRPOConfig, grpo_overrides

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VERL_VENV = REPO_ROOT / ".venvs" / "verl"
METRICS_FILE = "verl_metrics.jsonl"
SETUP_HINT = "create it with: bash training/setup_verl_venv.sh"


def verl_python(venv: str | Path | None = None) -> Path:
    """The verl venv's interpreter: `venv` (RMFORGE_VERL_VENV, through the verl resource), else <repo>/.venvs/verl."""
    root = Path(venv or DEFAULT_VERL_VENV)
    python = root / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"no verl venv at {root} ({SETUP_HINT})")
    return python


def verl_command(config: VerlGRPOConfig, python: str | Path | None = None, *extra_args: str) -> list[str]:
    """argv of `python -m verl.trainer.main_ppo <overrides>` in the verl venv."""
    interpreter = str(python) if python else str(verl_python())
    return [interpreter, "-m", "verl.trainer.main_ppo", *extra_args, *grpo_overrides(config)]


def verl_metrics_path(config: VerlGRPOConfig) -> Path:
    return Path(config.output_dir) / METRICS_FILE


def verl_env(config: VerlGRPOConfig, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the verl process: the file logger's path, and no hub downloads."""
    env = dict(os.environ if base is None else base)
    env["VERL_FILE_LOGGER_PATH"] = str(verl_metrics_path(config).resolve())
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def compose_verl_config(
    config: VerlGRPOConfig, python: str | Path | None = None, timeout_s: float = 120
) -> str:
    """verl's fully composed and resolved config for our overrides, as YAML text (CPU, ~5 s).

    A cheap preflight before a GPU run: Hydra rejects unknown keys and bad values here.
    """
    command = verl_command(config, python, "--cfg", "job", "--resolve")
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=timeout_s, env=verl_env(config)
    )
    if done.returncode != 0:
        raise RuntimeError(f"verl rejected the overrides (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def run_verl(
    config: VerlGRPOConfig, log_path: str | Path | None = None, python: str | Path | None = None
) -> subprocess.CompletedProcess:
    """Run GRPO training to the end (needs GPUs: verl's rollout engines are vllm/sglang/trtllm).

    stdout and stderr go to `log_path` (default `<output_dir>/verl.log`); raises on a non-zero exit.
    """
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_path or output / "verl.log")
    with open(log_file, "w", encoding="utf-8") as handle:
        done = subprocess.run(
            verl_command(config, python),
            check=False,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=verl_env(config),
            cwd=output,
        )
    if done.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"verl exited with {done.returncode}; last log lines ({log_file}):\n{tail}")
    return done


def read_verl_metrics(path: str | Path) -> list[dict[str, Any]]:
    """verl file-logger lines as flat rows {"step": N, "<metric>": value, ...}.

    The last line may be cut off while verl is still writing it: that one is skipped; a broken
    line anywhere else is an error naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            rows.append({"step": int(record["step"]), **record["data"]})
        except (ValueError, KeyError, TypeError) as error:
            if number == len(lines):
                break
            raise ValueError(f"{path}, line {number}: not a verl file-logger record: {error}") from error
    return rows


def latest_actor_checkpoint(output_dir: str | Path) -> Path | None:
    """`<output_dir>/global_step_<N>/actor` of the newest step verl recorded, or None."""
    tracker = Path(output_dir) / "latest_checkpointed_iteration.txt"
    if not tracker.exists():
        return None
    actor = Path(output_dir) / f"global_step_{int(tracker.read_text().strip())}" / "actor"
    return actor if actor.exists() else None


def merge_command(
    actor_dir: str | Path, target_dir: str | Path, python: str | Path | None = None
) -> list[str]:
    """argv that merges an FSDP actor checkpoint into a Hugging Face model folder."""
    interpreter = str(python) if python else str(verl_python())
    return [
        interpreter,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(actor_dir),
        "--target_dir",
        str(target_dir),
    ]

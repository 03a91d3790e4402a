"""Run ``inferflow serve`` as a subprocess (for shutdown tests and benchmarks).

``entry_point_plugin(dir, name, "module:attr")`` makes a plugin object importable from ``dir`` visible
to the subprocess's entry-point scan (a minimal ``*.dist-info``), so a test component can be served
without installing a distribution.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from .ports import pick_free_port


def entry_point_plugin(directory: str | os.PathLike[str], name: str, target: str) -> Path:
    """Write ``<dir>/<name>-0.0.0.dist-info`` declaring entry point ``inferflow: name = target``."""
    dist = Path(directory) / f"{name.replace('-', '_')}-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text(f"[inferflow]\n{name} = {target}\n")
    return dist


class ServeProcess:
    """``inferflow serve --config-dir DIR`` on free loopback ports; ``stop`` signals and waits (bounded)."""

    def __init__(
        self,
        config_dir: str | os.PathLike[str],
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        pythonpath: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
        cgroup_procs: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = pick_free_port()
        self.http_port = pick_free_port()
        self.config_dir = str(config_dir)
        self.workers = workers
        self.env = dict(os.environ)
        self.env.update({"INFERFLOW_BIND_HOST": "127.0.0.1", **(env or {})})
        if pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join([*pythonpath, self.env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            )
        self.log_path = log_path
        # a cgroup's ``cgroup.procs`` file: the server (and the workers it forks) run in that cgroup
        self.cgroup_procs = str(cgroup_procs) if cgroup_procs else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        script = Path(sys.executable).parent / "inferflow"
        launcher = [str(script)] if script.exists() else [sys.executable, "-m", "inferflow_core.cli"]
        cmd = [
            *launcher, "serve",
            "--config-dir", self.config_dir,
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--workers", str(self.workers),
        ]  # fmt: skip
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        if self.cgroup_procs:  # join the cgroup before exec, so no allocation happens outside it
            cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', self.cgroup_procs, *cmd]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"inferflow serve exited with {self.proc.returncode}")
            if self.ready():
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"inferflow serve not ready within {timeout}s")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()
        try:
            self.wait(20)
        finally:
            self.kill()

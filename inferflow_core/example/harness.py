"""Shared by ``inferflow demo`` and ``inferflow bench``: config dirs, env, server processes, requests.

Kept beside the example because it knows the example's model, feature names and data layout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG_DIR = HERE / "config"
MODEL_REL = "inferflow/services/inferflow/model-config/config-map"
ONNX_PLACEHOLDER = "onnx://example-data/models"
MODELS = ("bench_ctr", "bench_ctr_pairwise", "bench_ctr_slatewise")


def write_config(
    dest: Path,
    data_dir: Path,
    *,
    predator_endpoint: str | None = None,
    cache: bool = False,
    logging_perc: int | None = None,
    models: Sequence[str] = MODELS,
    ranker_batch: int | None = None,
) -> Path:
    """Copy the example config tree to ``dest`` with endpoints pointing at ``data_dir`` (or a server);
    ``ranker_batch``: the models' Predator ``batch_size`` (rows per model call)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(CONFIG_DIR, dest)
    endpoint = predator_endpoint or f"onnx://{(data_dir / 'models').resolve()}"
    for path in sorted((dest / MODEL_REL).glob("*.json")):
        if path.stem not in models:
            path.unlink()
            continue
        model = json.loads(path.read_text())
        cc = model["component_config"]
        cc["cache_enabled"] = cache
        for comp in cc.get("predator_components", []):
            if comp.get("model_end_point") == ONNX_PLACEHOLDER:
                comp["model_end_point"] = endpoint
            if ranker_batch is not None:
                comp["batch_size"] = ranker_batch
        if logging_perc is not None:
            model["response_config"]["logging_perc"] = logging_perc
        path.write_text(json.dumps(model, indent=2))
    return dest


def embedded_env(data_dir: Path, log_dir: Path | None = None, base: dict | None = None) -> dict[str, str]:
    """Environment for a server with every backend in process: local store, ONNX Runtime, numpy."""
    env = dict(os.environ if base is None else base)
    for name in (
        "EXTERNAL_SERVICE_ONFS_FS_HOST",
        "NUMERIX_CLIENT_V1_HOST",
        "ETCD_SERVER",
        "KAFKA_BOOTSTRAP_SERVERS",
    ):
        env.pop(name, None)
    env["INFERFLOW_ONFS_LOCAL_DIR"] = str((data_dir / "features").resolve())
    if log_dir is not None:
        env["INFERFLOW_LOG_DIR"] = str(log_dir)
        env["INFERFLOW_LOG_SINK"] = "file"
    else:
        env["INFERFLOW_LOG_SINK"] = "none"
    env.setdefault("APP_LOG_LEVEL", "WARNING")
    return env


class ServerProcess:
    """A child process (``inferflow serve`` or a backend server) with a bounded readiness wait."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.cmd, self.env, self.log_path = name, cmd, env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait_http(self, url: str, timeout: float = 60.0) -> float:
        """Wait until GET ``url`` answers 200; returns the seconds it took."""
        t0 = time.monotonic()
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    if resp.status == 200:
                        return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{self.name} not ready at {url} after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def wait_port(self, port: int, timeout: float = 60.0) -> float:
        t0 = time.monotonic()
        while True:
            self._check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(
                    f"{self.name} not listening on {port} after {timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """This process and its children (worker processes), for RSS measurements."""
        if self.proc is None:
            return []
        out = [self.proc.pid]
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            out += [int(k) for k in kids]
        except OSError:
            pass
        return out

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the children that are not multiprocessing helpers (the
        resource tracker), or this process itself when it has none (a single-worker server)."""
        kids = []
        for pid in self.pids()[1:]:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmd:
                kids.append(pid)
        return kids or self.pids()[:1]

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, wait ``grace`` seconds, then SIGKILL the process group. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)


def inferflow_serve(config_dir: Path, port: int, http_port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "inferflow_core.cli",
        "serve",
        "--config-dir",
        str(config_dir),
        "--port",
        str(port),
        "--http-port",
        str(http_port),
        "--workers",
        str(workers),
    ]


def rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of ``pid`` in MB, 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds ``pid`` has used so far, all its threads (Linux /proc; 0 when it is
    gone); ``children``: plus those of its live child processes, recursively (e.g. an encoder process)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*/children") if children else ():
        try:
            kids = task.read_text().split()
        except OSError:
            continue
        total += sum(cpu_seconds(int(kid), children=True) for kid in kids)
    return total


# -- requests ----------------------------------------------------------------------------------------


class Workload:
    """Deterministic request contents: users and catalog ids drawn uniformly from the generated data."""

    def __init__(self, users: int, catalogs: int, seed: int = 7) -> None:
        self.users, self.catalogs = users, catalogs
        self.rng = np.random.default_rng(seed)

    def draw(self, targets: int) -> tuple[str, list[str]]:
        user = str(int(self.rng.integers(self.users)))
        ids = self.rng.choice(self.catalogs, size=targets, replace=False)
        return user, [str(int(i)) for i in ids]


def pointwise(pb, model: str, user: str, ids: Sequence[str], tracking_id: str = ""):
    return pb.PointWiseRequest(
        model_config_id=model,
        tracking_id=tracking_id,
        context_features=[
            pb.ContextFeature(name="user_id", value=user.encode(), data_type=pb.DataTypeString)
        ],
        targets=[pb.Target(id=i) for i in ids],
    )


def pairwise(pb, model: str, user: str, ids: Sequence[str], pairs: Sequence[tuple[int, int]]):
    return pb.PairWiseRequest(
        model_config_id=model,
        context_features=[
            pb.ContextFeature(name="user_id", value=user.encode(), data_type=pb.DataTypeString)
        ],
        targets=[pb.Target(id=i) for i in ids],
        pairs=[pb.TargetPair(first_target_index=a, second_target_index=b) for a, b in pairs],
    )


def slatewise(pb, model: str, user: str, ids: Sequence[str], slates: Sequence[Sequence[int]]):
    return pb.SlateWiseRequest(
        model_config_id=model,
        context_features=[
            pb.ContextFeature(name="user_id", value=user.encode(), data_type=pb.DataTypeString)
        ],
        targets=[pb.Target(id=i) for i in ids],
        slates=[pb.TargetSlate(target_indices=list(s)) for s in slates],
    )


def retrieve(ipb, model: str, user: str, ids: Sequence[str]):
    Entity = ipb.InferflowRequestProto.Entity
    return ipb.InferflowRequestProto(
        model_config_id=model,
        entities=[Entity(entity="catalog_id", ids=list(ids)), Entity(entity="user_id", ids=[user])],
    )


def decode_fp32(cell: bytes) -> float | None:
    return float(np.frombuffer(cell, dtype="<f4")[0]) if len(cell) == 4 else None

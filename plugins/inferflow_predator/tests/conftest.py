"""Fixtures: a Runtime with the installed plugins, small ONNX repositories and a real MLServer process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from predator_support import EXAMPLE_REPO, N_FEATURES, ROOT, model_json

from inferflow_core.api import Runtime
from inferflow_core.testing import pick_free_port

# `make test` creates .venv-mlserver at the repository root and exports INFERFLOW_MLSERVER_BIN.
MLSERVER_BIN = os.environ.get("INFERFLOW_MLSERVER_BIN", str(ROOT / ".venv-mlserver" / "bin" / "mlserver"))
MLSERVER_PY = str(Path(MLSERVER_BIN).with_name("python"))
# `make test` creates .venv-triton (nvidia-pytriton: tritonserver 2.51, CPU-only, Python backend).
TRITON_PY = os.environ.get("INFERFLOW_TRITON_PYTHON", str(ROOT / ".venv-triton" / "bin" / "python"))


@pytest.fixture
def make_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Runtime]]:
    """``make_runtime(components, model_id="m")``: a Runtime (entry points loaded) serving one model."""
    monkeypatch.setenv("EXTERNAL_SERVICE_PREDATOR_GRPC_PLAIN_TEXT", "true")
    monkeypatch.setenv("EXTERNAL_SERVICE_PREDATOR_CALLER_ID", "inferflow-test")
    made: list[Runtime] = []

    def make(components: list[dict[str, Any]], model_id: str = "m") -> Runtime:
        rt = Runtime()
        rt.apply_tree({rt.settings.config_map_prefix + model_id: model_json(components)})
        assert not rt.store.current.errors, rt.store.current.errors
        made.append(rt)
        return rt

    yield make
    for rt in made:
        pool = rt.registry.components["predator_components"].pool
        pool._executor and pool._executor.shutdown(wait=False)


def predator_type(rt: Runtime) -> Any:
    return rt.registry.components["predator_components"]


# ------------------------------------------------------------------------------------------- MLServer
TRAIN = f"""
import json, sys, joblib, numpy as np
from sklearn.linear_model import LogisticRegression
out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
X = rng.normal(size=(400, {N_FEATURES})).astype(np.float32)
y = (X @ rng.normal(size={N_FEATURES}) + rng.normal(scale=0.5, size=400) > 0).astype(int)
clf = LogisticRegression(C=1.0).fit(X, y)
joblib.dump(clf, out + "/model.joblib")
probe = rng.normal(size=(64, {N_FEATURES})).astype(np.float32)
np.savez(out + "/expected.npz", X=probe, proba=clf.predict_proba(probe), label=clf.predict(probe),
         coef=clf.coef_, intercept=clf.intercept_)
"""


class MLServer:
    def __init__(self, workdir: Path, model_name: str, seed: int) -> None:
        self.dir = workdir
        self.model_name = model_name
        self.grpc_port, self.http_port, self.metrics_port = (pick_free_port() for _ in range(3))
        model_dir = workdir / model_name
        model_dir.mkdir(parents=True)
        subprocess.run([MLSERVER_PY, "-c", TRAIN, str(model_dir), str(seed)], check=True, timeout=120)
        self.expected = dict(np.load(model_dir / "expected.npz"))
        (model_dir / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": model_name,
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": "1"},
                }
            )
        )
        (workdir / "settings.json").write_text(
            json.dumps(
                {
                    "debug": False,
                    "host": "127.0.0.1",
                    "http_port": self.http_port,
                    "grpc_port": self.grpc_port,
                    "metrics_port": self.metrics_port,
                    "parallel_workers": 0,
                }
            )
        )
        self.log = open(workdir / "mlserver.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [MLSERVER_BIN, "start", str(workdir)], stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir
        )

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        url = f"http://127.0.0.1:{self.http_port}/v2/models/{self.model_name}/ready"
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        log = (self.dir / "mlserver.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"MLServer did not become ready within {timeout_s}s:\n{log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture(scope="session")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLServer]:
    if not Path(MLSERVER_BIN).exists():
        if os.environ.get("CI"):
            pytest.fail(f"MLServer binary not found at {MLSERVER_BIN}: CI must install it (scripts/test.sh)")
        pytest.skip(f"MLServer binary not found at {MLSERVER_BIN} (set INFERFLOW_MLSERVER_BIN)")
    server = MLServer(tmp_path_factory.mktemp("mlserver"), "clf", seed=3)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------- Triton
class TritonServer:
    """tests/triton_server.py in .venv-triton: the example MLP (and a slow twin) behind a real Triton."""

    def __init__(self, workdir: Path, slow_ms: int = 1000) -> None:
        import onnx
        from onnx import numpy_helper

        self.dir = workdir
        self.grpc_port, self.http_port, self.metrics_port = (pick_free_port() for _ in range(3))
        model = onnx.load(str(EXAMPLE_REPO / "s1_mlp" / "1" / "model.onnx"))
        self.weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        np.savez(workdir / "weights.npz", **self.weights)
        script = Path(__file__).with_name("triton_server.py")
        args = [str(workdir / "weights.npz"), self.grpc_port, self.http_port, self.metrics_port, slow_ms]
        self.log = open(workdir / "triton.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [TRITON_PY, str(script), *map(str, args)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def local(self, dense: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """The model computed here, in float32 like the server."""
        w = self.weights
        x = np.concatenate([dense, emb], axis=1).astype(np.float32)
        h1 = np.maximum(x @ w["w1"] + w["b1"], 0)
        h2 = np.maximum(h1 @ w["w2"] + w["b2"], 0)
        return (1.0 / (1.0 + np.exp(-(h2 @ w["w3"] + w["b3"])))).astype(np.float32)[:, 0]

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        end = time.monotonic() + timeout_s
        urls = [f"http://127.0.0.1:{self.http_port}/v2/models/{m}/ready" for m in ("s1_mlp", "s1_mlp_slow")]
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                if all(urllib.request.urlopen(u, timeout=1).status == 200 for u in urls):
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        log = (self.dir / "triton.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"Triton (PyTriton) did not become ready within {timeout_s}s:\n{log}")

    def stop(self) -> None:
        """SIGTERM to the PyTriton process (it stops tritonserver and exits); then SIGKILL to the whole
        process group (tritonserver and its Python backend stubs share it) so nothing outlives the tests."""
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.log.close()


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """A real Triton on loopback ports. Under CI (CI=true) a Triton that cannot start FAILS the tests."""
    if not Path(TRITON_PY).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{TRITON_PY} not found: CI must create .venv-triton (scripts/test.sh)")
        pytest.skip(f"{TRITON_PY} not found (make test creates .venv-triton; or set INFERFLOW_TRITON_PYTHON)")
    server = TritonServer(tmp_path_factory.mktemp("triton"))
    try:
        server.wait_ready()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def blackhole(hanging_port: int) -> str:
    """A TCP listener that never answers: connections hang in the HTTP/2 handshake."""
    return f"127.0.0.1:{hanging_port}"

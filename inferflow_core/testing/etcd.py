"""A real etcd for tests: ``/usr/bin/etcd`` on free loopback ports with a temp data dir.

Every wait is bounded; ``stop`` kills what ``start`` launched (by pid). ``restart(client_port=...)``
reuses the data dir, so revisions survive (used to test re-watching after an outage).

``EtcdProcess(tls=server_cert, client=client_cert)`` serves https (``--cert-file``/``--key-file``/
``--trusted-ca-file``); with ``client`` it also requires client certificates (``--client-cert-auth``) and
checks its own health with that certificate (see :mod:`inferflow_core.testing.certs`).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from .ports import pick_free_port

ETCD_BIN = os.environ.get("INFERFLOW_ETCD_BIN", "/usr/bin/etcd")


class EtcdProcess:
    def __init__(self, data_dir: str | None = None, tls: Any = None, client: Any = None) -> None:
        self.tls, self.client = tls, client
        self.scheme = "https" if tls is not None else "http"
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="inferflow-etcd-")
        self.client_port = pick_free_port()
        self.peer_port = pick_free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = Path(self.data_dir).parent / (Path(self.data_dir).name + ".log")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    def start(self, client_port: int | None = None, timeout: float = 10.0) -> None:
        if not os.path.exists(ETCD_BIN):
            raise RuntimeError(f"etcd binary not found at {ETCD_BIN} (apt-get install etcd-server)")
        port = client_port or self.client_port
        client_url = f"{self.scheme}://127.0.0.1:{port}"
        peer_url = f"http://127.0.0.1:{self.peer_port}"
        cmd = [
            ETCD_BIN,
            "--name", "test",
            "--data-dir", os.path.join(self.data_dir, "data"),
            "--listen-client-urls", client_url,
            "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"test={peer_url}",
            "--log-level", "error",
        ]  # fmt: skip
        if self.tls is not None:
            cmd += ["--cert-file", self.tls.cert_file, "--key-file", self.tls.key_file]
            cmd += ["--trusted-ca-file", self.tls.ca_file]
            if self.client is not None:
                cmd.append("--client-cert-auth")
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}: {self._tail()}")
            try:
                with urllib.request.urlopen(f"{client_url}/health", timeout=0.5, context=self._ssl()) as resp:
                    if b"true" in resp.read():
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd not healthy within {timeout}s: {self._tail()}")

    def _ssl(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        ctx = ssl.create_default_context(cafile=self.tls.ca_file)
        if self.client is not None:
            ctx.load_cert_chain(self.client.cert_file, self.client.key_file)
        return ctx

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self, client_port: int | None = None) -> None:
        self.stop()
        self.start(client_port)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            with_log = self._log
            if with_log.exists():
                with_log.unlink()

    def _tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def __enter__(self) -> EtcdProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

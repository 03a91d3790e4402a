"""deploy/: the kustomize overlays render (``kubectl kustomize``, when kubectl is installed) with the
Kubernetes behaviour issue 13 asks for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUBECTL = shutil.which("kubectl")


def _render(overlay: str) -> str:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("overlay", ["etcd", "configmap"])
def test_overlay_renders_with_probes_and_no_api_token(overlay: str) -> None:
    text = _render(overlay)
    assert text.count("automountServiceAccountToken: false") == 2  # ServiceAccount and pod spec
    for probe, path in (("livenessProbe", "/health/self"), ("readinessProbe", "/health/ready")):
        block = text.split(probe + ":", 1)[1].split("Probe:", 1)[0]
        assert f"path: {path}" in block
    assert "INFERFLOW_GRPC_MAX_CONNECTION_AGE_S" in text
    if overlay == "etcd":
        assert "ETCD_SERVER:" in text
        assert "inferflow-models" not in text
    else:
        assert "ETCD_SERVER" not in text
        assert "INFERFLOW_CONFIG_DIR: /etc/inferflow/config" in text
        assert "name: inferflow-models" in text
        assert "subPath" not in text
        assert "mountPath: /etc/inferflow/config/inferflow/services/inferflow/model-config/config-map" in text


def test_network_policy_example_exists() -> None:
    text = (DEPLOY / "examples" / "networkpolicy.yaml").read_text()
    assert "kind: NetworkPolicy" in text
    assert "policyTypes" in text

"""Raw tensor encoding of the KServe v2 path (raw_input_contents / raw_output_contents), every datatype."""

from __future__ import annotations

import numpy as np
import pytest
from inferflow_predator.pool import normalise_endpoint
from inferflow_predator.tensors import Tensor, from_raw, to_raw

from inferflow_core.api import ComponentError, codecs

NUMERIC = ["FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]


@pytest.mark.parametrize("datatype", NUMERIC)
def test_numeric_round_trip_is_little_endian(datatype: str) -> None:
    dt = codecs.from_kserve(datatype).numpy_dtype
    arr = (np.arange(6) * 3 + 1).astype(dt).reshape(2, 3)
    raw = to_raw(Tensor("x", datatype, arr))
    assert raw == arr.astype(dt.newbyteorder("<")).tobytes()
    assert len(raw) == 6 * dt.itemsize
    back = from_raw(datatype, [2, 3], raw)
    assert back.dtype == dt
    assert back.shape == (2, 3)
    np.testing.assert_array_equal(back, arr)


def test_bool_is_one_byte_any_nonzero_true() -> None:
    assert to_raw(Tensor("x", "BOOL", np.array([[True, False]]))) == b"\x01\x00"
    assert from_raw("BOOL", [3], b"\x00\x02\x01").tolist() == [False, True, True]


def test_bytes_are_uint32_length_prefixed() -> None:
    arr = np.array([["ab", ""], ["héllo", b"\x00\xff"]], dtype=object)
    raw = to_raw(Tensor("x", "BYTES", arr))
    assert raw == (
        b"\x02\x00\x00\x00ab"
        + b"\x00\x00\x00\x00"
        + b"\x06\x00\x00\x00h\xc3\xa9llo"
        + b"\x02\x00\x00\x00\x00\xff"
    )
    back = from_raw("BYTES", [2, 2], raw)
    assert back.shape == (2, 2)
    assert back[0].tolist() == ["ab", ""]
    assert back[1, 0] == "héllo"
    with pytest.raises(ComponentError):
        from_raw("BYTES", [1], b"\x09\x00\x00\x00ab")


def test_unsupported_and_misaligned_outputs_fail() -> None:
    with pytest.raises(ComponentError):
        from_raw("BF16", [1], b"\x00\x00")
    with pytest.raises(ComponentError):
        from_raw("FP32", [1], b"\x00\x00\x00")


def test_endpoint_forms() -> None:
    assert normalise_endpoint("predator-ctr", 8090) == "predator-ctr:8090"
    assert normalise_endpoint(" host:9000 ", 8090) == "host:9000"
    assert normalise_endpoint("[::1]", 8090) == "[::1]:8090"
    assert normalise_endpoint("[::1]:7", 8090) == "[::1]:7"
    assert normalise_endpoint("onnx://examples/models/repo", 8090) == "onnx://examples/models/repo"


def test_own_kserve_stubs_keep_the_open_inference_protocol_wire() -> None:
    """The plugin's stubs replace tritonclient's: the method paths and the field numbers the wire depends
    on must be those of the published protocol (the MLServer tests then prove a real server agrees)."""
    import sys

    from inferflow_predator._proto import grpc_predict_v2_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"} <= {
        m.name for m in service.methods
    }
    numbers = {f.name: f.number for f in pb.ModelInferRequest.DESCRIPTOR.fields}
    assert numbers == {
        "model_name": 1, "model_version": 2, "id": 3, "parameters": 4, "inputs": 5, "outputs": 6,
        "raw_input_contents": 7,
    }  # fmt: skip
    assert {f.name: f.number for f in pb.ModelInferResponse.DESCRIPTOR.fields}["raw_output_contents"] == 6
    tensor = {f.name: f.number for f in pb.ModelInferRequest.InferInputTensor.DESCRIPTOR.fields}
    assert tensor == {"name": 1, "datatype": 2, "shape": 3, "parameters": 4, "contents": 5}
    request = pb.ModelInferRequest(model_name="m", model_version="1", raw_input_contents=[b"\x01"])
    assert request.SerializeToString() == b"\n\x01m\x12\x011:\x01\x01"
    assert "tritonclient" not in sys.modules

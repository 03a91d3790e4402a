"""Inferflow's wire protocol as generated protobuf and gRPC modules, for load generators and wire tests.

A load generator builds and serialises its requests before the clock starts and sends raw bytes; a
wire test checks the exact messages the server answers. Both need the messages themselves, which the
public client (:class:`inferflow_core.api.InferflowClient`) hides::

    from inferflow_core.testing.protos import predict_pb2

    raw = predict_pb2.PointWiseRequest(model_config_id="m", targets=[predict_pb2.Target(id="1")])
    reply = predict_pb2.PointWiseResponse.FromString(channel.unary_unary(...)(raw.SerializeToString()))

* ``predict_pb2`` / ``predict_pb2_grpc``: the ``Predict`` service (PointWise, PairWise, SlateWise);
* ``inferflow_pb2`` / ``inferflow_pb2_grpc``: the ``Inferflow`` service (``RetrieveModelScore``).
"""

from __future__ import annotations

from .._proto import inferflow_pb2, inferflow_pb2_grpc, predict_pb2, predict_pb2_grpc

__all__ = ["inferflow_pb2", "inferflow_pb2_grpc", "predict_pb2", "predict_pb2_grpc"]

"""The client side of the pbt gRPC API: channels, typed clients, and the proto <-> config mapping.

`open_channel` (TLS, bearer token), `OrchestratorClient` and `EvaluatorClient` (thin typed
wrappers over the generated stubs in `pbt.v1`), and `pbt.rpc.convert` (the only place where
`RunConfig`/`EvalConfig` meet protobuf; the services use it too).
"""

from pbt.rpc.channel import open_channel
from pbt.rpc.clients import EvaluatorClient, OrchestratorClient
from pbt.rpc.convert import (
    eval_config_dict_from_proto,
    eval_config_from_request,
    eval_config_to_proto,
    proto_to_dict,
    run_config_from_proto,
    run_config_to_proto,
    summary_to_proto,
)

__all__ = [
    "EvaluatorClient",
    "OrchestratorClient",
    "eval_config_dict_from_proto",
    "eval_config_from_request",
    "eval_config_to_proto",
    "open_channel",
    "proto_to_dict",
    "run_config_from_proto",
    "run_config_to_proto",
    "summary_to_proto",
]

"""The ran-distill xApp: gRPC + REST link-adaptation inference with per-UE state.

One data plane (:mod:`service.dataplane`: model registry, per-UE state, micro-batched
onnxruntime inference, OLLA fallback) behind thin gRPC (:mod:`service.grpc_server`) and
REST (:mod:`service.rest`) adapters. Never imports torch.
"""

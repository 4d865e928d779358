"""Generated protobuf/gRPC stubs for ``proto/linkadapt/v1`` (do not edit; run build.py)."""

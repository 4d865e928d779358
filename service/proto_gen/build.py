"""Regenerate the committed gRPC/protobuf stubs from ``proto/``.

    python -m service.proto_gen.build            # rewrite service/proto_gen/
    python -m service.proto_gen.build --out DIR  # write elsewhere (the drift test does this)

Uses the protoc bundled with ``grpcio-tools`` so the output depends only on that
package's version. The generated ``*_pb2_grpc.py`` imports its ``*_pb2`` through the
``service.proto_gen`` package (protoc would emit ``from linkadapt.v1 import ...``, which
would clash with the ``linkadapt`` Python package).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
PROTO_FILES = ("linkadapt/v1/link_adaptation.proto",)
OUT_DEFAULT = Path(__file__).resolve().parent
GENERATED = ("link_adaptation_pb2.py", "link_adaptation_pb2.pyi", "link_adaptation_pb2_grpc.py")


def build(out_dir: Path) -> list[Path]:
    """Generate the stubs into ``out_dir`` (flat layout); return the written files."""
    import tempfile

    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        well_known = Path(protoc.__file__).resolve().parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *(str(PROTO_ROOT / p) for p in PROTO_FILES),
        ]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc}")
        gen_dir = Path(tmp) / "linkadapt" / "v1"
        for name in GENERATED:
            text = (gen_dir / name).read_text()
            text = text.replace(
                "from linkadapt.v1 import link_adaptation_pb2",
                "from service.proto_gen import link_adaptation_pb2",
            )
            target = out_dir / name
            target.write_text(text)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DEFAULT)
    ns = parser.parse_args(argv)
    for path in build(ns.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

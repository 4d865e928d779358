"""Distillation data on disk: content-hashed ``.npy`` chunks, reused by an identical rerun.

Layout of a data directory::

    chunks/<key>-<i>.obs.npy    float32 [n, T, Ds]  the student's columns
    chunks/<key>-<i>.q.npy      float32 [n, T, A]   the teacher's Q-values
    chunks/<key>-<i>.feat.npy   float32 [n, T, F]   the teacher's last hidden layer (feature loss)
    chunks/<key>-<i>.json       done marker: rows, shapes, SHA-256 of each file and of the chunk

``key`` is a hash of everything that determines the chunk's content (:func:`content_key`),
so a rerun with the same configuration finds its finished chunks and collects only the
missing ones, and runs that share data (the same teacher-driven rounds for several losses)
share chunks. A chunk is written to temporary names and renamed, its marker last: a chunk
without marker does not exist.

A :class:`Dataset` is an ordered list of chunks. Its SHA-256 (of the chunks' hashes, in
order) is the data hash of the manifest. Training reads it through a shuffle buffer: chunks
in a random order, whole chunks loaded until the buffer holds ``buffer_rows`` rows, those
shuffled and cut into minibatches. Nothing beyond one buffer is in RAM, whatever the size
of the dataset (memory-mapped reads).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.artifacts import sha256_file
from training.distill.sources import Samples

ARRAYS = ("obs", "q", "feat")


def content_key(**parts: Any) -> str:
    """Hex SHA-256 of ``parts`` as canonical JSON (what a chunk's content depends on)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class ChunkInfo:
    """One finished chunk: its file stem, its rows and its SHA-256."""

    stem: str
    rows: int
    sha256: str


class ChunkStore:
    """The chunks of one data directory (see module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "chunks"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _marker(self, stem: str) -> Path:
        return self.dir / f"{stem}.json"

    def find(self, key: str, index: int) -> ChunkInfo | None:
        """The finished chunk ``index`` of ``key``, or ``None``."""
        stem = f"{key[:24]}-{index:05d}"
        marker = self._marker(stem)
        if not marker.is_file():
            return None
        meta = json.loads(marker.read_text())
        return ChunkInfo(stem, int(meta["rows"]), str(meta["sha256"]))

    def write(self, key: str, index: int, samples: Samples) -> ChunkInfo:
        """Write ``samples`` as chunk ``index`` of ``key`` (atomically, marker last)."""
        stem = f"{key[:24]}-{index:05d}"
        hashes: dict[str, str] = {}
        shapes: dict[str, list[int]] = {}
        for name in ARRAYS:
            array = getattr(samples, name)
            if array is None:
                continue
            final = self.dir / f"{stem}.{name}.npy"
            tmp = self.dir / f".{stem}.{name}.{os.getpid()}.tmp.npy"
            np.save(tmp, np.ascontiguousarray(array, np.float32))
            hashes[name] = sha256_file(tmp)
            shapes[name] = list(array.shape)
            tmp.replace(final)
        digest = hashlib.sha256("".join(hashes[k] for k in sorted(hashes)).encode()).hexdigest()
        meta = {"rows": len(samples), "shapes": shapes, "files": hashes, "sha256": digest}
        tmp_marker = self.dir / f".{stem}.{os.getpid()}.json"
        tmp_marker.write_text(json.dumps(meta, indent=1) + "\n")
        tmp_marker.replace(self._marker(stem))
        return ChunkInfo(stem, len(samples), digest)

    def load(self, chunk: ChunkInfo, mmap: bool = True) -> Samples:
        """The arrays of ``chunk`` (memory-mapped by default: read lazily)."""
        mode = "r" if mmap else None
        arrays = {}
        for name in ARRAYS:
            path = self.dir / f"{chunk.stem}.{name}.npy"
            arrays[name] = np.load(path, mmap_mode=mode) if path.is_file() else None
        return Samples(arrays["obs"], arrays["q"], arrays["feat"])


@dataclass
class Dataset:
    """An ordered list of chunks of one store."""

    store: ChunkStore
    chunks: list[ChunkInfo] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(c.rows for c in self.chunks)

    def sha256(self) -> str:
        """SHA-256 of the chunks' hashes in order: the data hash of the manifest."""
        return hashlib.sha256("".join(c.sha256 for c in self.chunks).encode()).hexdigest()

    def load_all(self) -> Samples:
        """Every row in RAM (for small sets: validation, tests)."""
        return Samples.concat([self.store.load(c, mmap=False) for c in self.chunks])

    def batches(
        self, batch_size: int, rng: np.random.Generator, buffer_rows: int
    ) -> Iterator[Samples]:
        """Minibatches over every row once, through the shuffle buffer (module doc)."""
        group: list[ChunkInfo] = []
        rows = 0
        for index in rng.permutation(len(self.chunks)):
            group.append(self.chunks[int(index)])
            rows += self.chunks[int(index)].rows
            if rows >= buffer_rows:
                yield from self._shuffled(group, batch_size, rng)
                group, rows = [], 0
        if group:
            yield from self._shuffled(group, batch_size, rng)

    def _shuffled(
        self, group: list[ChunkInfo], batch_size: int, rng: np.random.Generator
    ) -> Iterator[Samples]:
        block = Samples.concat([self.store.load(c, mmap=False) for c in group])
        order = rng.permutation(len(block))
        for start in range(0, len(block), batch_size):
            idx = order[start : start + batch_size]
            feat = None if block.feat is None else block.feat[idx]
            yield Samples(block.obs[idx], block.q[idx], feat)

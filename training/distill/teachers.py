"""Teachers: a torch model directory, an ONNX model or an in-memory module, behind one face.

A teacher says which observation columns it reads (``feature_names``, from its manifest or
from the observation size) and maps a batch of those columns to Q-values. A student reads
its own columns: for the simulator the encoder's schema (never the privileged columns a
teacher may see), for any other task all of them; :func:`student_columns` slices the
teacher's view by name, so a student never gets a column it cannot have at serving time.

Every teacher has a SHA-256 (of its weights file, or of the module's parameters) that the
student's manifest records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.artifacts import (
    MANIFEST_FILE,
    has_torch_weights,
    load_torch_qnet,
    observation_schema,
    onnx_model_file,
    sha256_file,
    torch_weights_file,
)


@dataclass
class Teacher:
    """A Q-network that labels observations.

    Attributes:
        label: where it came from (path or a name).
        obs_dim, n_actions: its input columns and actions.
        feature_names: its columns by name (``None`` for tasks without a schema).
        privileged: whether it reads the simulator's privileged columns.
        sha256: hash of its weights (file, or the parameters of an in-memory module).
        arch, parameter_count: when known.
        net: the torch module (torch teachers), else ``None``.
        session: the onnxruntime session (ONNX teachers), else ``None``.
    """

    label: str
    obs_dim: int
    n_actions: int
    feature_names: tuple[str, ...] | None
    privileged: bool
    sha256: str
    arch: str | None = None
    parameter_count: int | None = None
    net: Any = None
    session: Any = None
    onnx_path: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def recurrent(self) -> bool:
        return bool(getattr(self.net, "recurrent", False))

    @property
    def hidden_size(self) -> int:
        return int(getattr(self.net, "hidden_size", 0))

    def q_values(self, obs: np.ndarray, hidden: Any = None) -> tuple[np.ndarray, Any]:
        """Q-values float32 ``[n, n_actions]`` of ``obs`` ``[n, obs_dim]``; a recurrent
        teacher also takes and returns its state ``[1, n, H]`` (else ``None`` both ways)."""
        x = np.ascontiguousarray(obs, np.float32)
        if self.session is not None:
            return self.session.run(["q_values"], {"obs": x})[0], None
        import torch

        with torch.no_grad():
            t = torch.from_numpy(x)
            if self.recurrent:
                h0 = hidden if hidden is not None else self.net.initial_state(len(x))
                q, h = self.net.forward_seq(t.unsqueeze(1), h0)
                return q.squeeze(1).numpy(), h
            return self.net(t).numpy(), None

    def hidden_features(self, obs: np.ndarray) -> np.ndarray:
        """The last hidden layer's activations ``[n, width]`` (feature matching); torch
        feed-forward teachers only."""
        from training.distill.students import last_hidden

        if self.net is None or self.recurrent:
            raise ValueError(f"teacher {self.label}: feature matching needs a torch MLP teacher")
        import torch

        with torch.no_grad():
            return last_hidden(self.net, torch.from_numpy(np.ascontiguousarray(obs))).numpy()

    def feature_width(self) -> int:
        """Width of :meth:`hidden_features` (checked on one zero row)."""
        return int(self.hidden_features(np.zeros((1, self.obs_dim), np.float32)).shape[1])


def load_teacher(spec: str | Any, label: str | None = None) -> Teacher:
    """A :class:`Teacher` from a torch model directory (``model.pt`` or a student's
    ``student.pt``, with ``manifest.json`` or ``config.json``), an ONNX file or directory,
    or a torch module exposing ``obs_dim``/``n_actions``. A directory with both torch
    weights and ONNX gives the torch teacher (feature matching needs its layers)."""
    if not isinstance(spec, str | Path):
        return _module_teacher(spec, label or type(spec).__name__)
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"teacher {spec!r}: no such file or directory")
    if has_torch_weights(path):
        net = load_torch_qnet(path)
        manifest = _manifest_near(path)
        teacher = _module_teacher(net, label or str(path), manifest)
        teacher.sha256 = sha256_file(torch_weights_file(path))
        teacher.arch = manifest.get("arch") or teacher.arch
        return teacher
    onnx_path = onnx_model_file(path)
    if onnx_path is None:
        raise ValueError(f"teacher {spec!r}: expected model.pt / student.pt or a model.onnx")
    return _onnx_teacher(onnx_path, label or str(path))


def student_columns(teacher: Teacher, student_names: tuple[str, ...] | None) -> np.ndarray:
    """Indices of the student's columns in the teacher's observation.

    ``student_names`` ``None`` means "every column" (tasks without a schema). A student
    column the teacher's view lacks is an error naming it.
    """
    if student_names is None or teacher.feature_names is None:
        return np.arange(teacher.obs_dim)
    missing = [n for n in student_names if n not in teacher.feature_names]
    if missing:
        raise ValueError(f"teacher {teacher.label} does not observe student columns {missing}")
    return np.array([teacher.feature_names.index(n) for n in student_names], np.int64)


def student_feature_names(teacher: Teacher) -> tuple[str, ...] | None:
    """What a student may read: the encoder's schema (no privileged columns) when the
    teacher reads simulator observations, else every column (``None``)."""
    from linkadapt import features

    if teacher.feature_names is None:
        return None
    return tuple(features.FEATURE_NAMES)


def module_sha256(net: Any) -> str:
    """SHA-256 over a module's parameters and buffers (names, shapes, bytes) in order."""
    h = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _module_teacher(net: Any, label: str, manifest: dict[str, Any] | None = None) -> Teacher:
    from training.networks import parameter_count

    obs_dim, n_actions = int(net.obs_dim), int(net.n_actions)
    names, privileged = _columns(obs_dim, manifest or {})
    has_params = any(True for _ in net.parameters())
    return Teacher(
        label=label,
        obs_dim=obs_dim,
        n_actions=n_actions,
        feature_names=names,
        privileged=privileged,
        sha256=module_sha256(net)
        if net.state_dict()
        else hashlib.sha256(label.encode()).hexdigest(),
        arch=(manifest or {}).get("arch"),
        parameter_count=parameter_count(net) if has_params else None,
        net=net.eval(),
        manifest=manifest or {},
    )


def _onnx_teacher(path: Path, label: str) -> Teacher:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ValueError(
            f"teacher {label}: ONNX model has {len(inputs)} inputs; a recurrent teacher "
            "distills from its torch directory (model.pt), not from ONNX"
        )
    if inputs[0].name != "obs" or outputs[0].name != "q_values":
        raise ValueError(f"teacher {label}: expected input 'obs' and output 'q_values'")
    obs_dim, n_actions = int(inputs[0].shape[1]), int(outputs[0].shape[1])
    manifest = _manifest_near(path.parent)
    names, privileged = _columns(obs_dim, manifest)
    return Teacher(
        label=label,
        obs_dim=obs_dim,
        n_actions=n_actions,
        feature_names=names,
        privileged=privileged,
        sha256=sha256_file(path),
        arch=manifest.get("arch"),
        parameter_count=manifest.get("parameter_count"),
        session=session,
        onnx_path=path,
        manifest=manifest,
    )


def _manifest_near(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _columns(obs_dim: int, manifest: dict[str, Any]) -> tuple[tuple[str, ...] | None, bool]:
    """(feature names, privileged) from the manifest, else from the observation size."""
    names = manifest.get("feature_names")
    if names is not None:
        if len(names) != obs_dim:
            raise ValueError(f"manifest lists {len(names)} feature names for obs_dim {obs_dim}")
        return tuple(names), bool(manifest.get("privileged", False))
    schema = observation_schema(obs_dim)
    found = schema["feature_names"]
    return (tuple(found) if found is not None else None), bool(schema["privileged"])

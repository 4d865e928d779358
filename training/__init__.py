"""Offline training: DQN teachers, policy loaders, ONNX export, evaluation reports.

Imports torch lazily where it can: :mod:`training.cli` must stay importable in the
serving image, which has no torch.
"""

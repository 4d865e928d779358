"""The ran-distill application: the ``ran-distill`` CLI and the demo.

A thin layer over the three packages: :mod:`linkadapt` (NR core and simulator),
:mod:`training` (teachers, distillation, export) and :mod:`service` (the xApp). It
composes their commands; nothing below it imports it.
"""

"""``ran-distill report``: the distillation study, regenerated from artifacts.

Named stages (:mod:`.stages` and the DQN stages of ``training.dqn.distill_stages``), each
with its own budget (:mod:`.budgets`: ``tiny`` to exercise everything in about a minute,
``full`` for the reported numbers), write their artifacts under
``artifacts/distill/<budget>/<stage>/`` with a done-marker; a rerun skips finished stages.
:mod:`.markdown` and :mod:`.figures` turn the results into ``reports/distillation.md`` and
its PNGs, stating the budget of every number and the wall time of every stage.
"""

"""CleanRL-style DQN: double-DQN, dueling, n-step, target nets, PER, DRQN sequence replay.

Entry point: :func:`training.dqn.trainer.train` with a :class:`~training.dqn.config.DQNConfig`.
"""

"""NR link-adaptation core: 38.214 tables, BLER abstraction, reports, features, policies, simulator.

What the xApp imports (reports, features, OLLA, BLER thresholds) needs numpy only; the
simulator, evaluation and calibration also use scipy (the ``sim`` extra).
"""

__version__ = "0.1.0"

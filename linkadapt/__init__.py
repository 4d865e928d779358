"""NR link-adaptation core: 38.214 tables, BLER abstraction, reports, features, policies, simulator.

Only numpy and scipy are imported here, so the xApp pulls in nothing more.
"""

__version__ = "0.1.0"

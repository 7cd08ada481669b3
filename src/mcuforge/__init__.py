"""mcuforge: deep-learning models on microcontrollers.

Pipeline (one way): frontends -> ir -> analysis/planner -> runtime/codegen -> report.
"""

__version__ = "0.1.0"

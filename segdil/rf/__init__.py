"""Receptive-field analysis of dilated stacks: exact coverage, the HDC rule, gridding.

The analysis (``segdil.rf.analysis``) is pure: it imports nothing else from segdil, so the model
families can check their stacks at construction. ``segdil.rf.plot`` draws it, ``segdil.rf.erf``
measures the gradient ERF of a built model, ``segdil.rf.text`` formats the text report.
"""

from segdil.rf.analysis import (
    RFReport,
    analyze_stack,
    comparison_stack,
    covering_group,
    describe_stack,
    gridding_group,
    hdc_rule,
    stack_path_counts,
)

__all__ = [
    "RFReport",
    "analyze_stack",
    "comparison_stack",
    "covering_group",
    "describe_stack",
    "gridding_group",
    "hdc_rule",
    "stack_path_counts",
]

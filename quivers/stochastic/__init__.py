"""Inference recipes for compiled QVR constructs that are not programs (deduction
systems): fitting, sampling and posterior models built on ``quivers.inference``."""

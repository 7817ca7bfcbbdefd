"""Continuous delivery: model promotion (`python -m pipeline.models`) and the delivery pipeline's entry points."""

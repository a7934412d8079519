"""Models by name or by import path; every model takes inputs in [0, 1] and returns logits."""

from amc_dist.models.registry import MODEL_NAMES, build_model, build_model_for

__all__ = ["MODEL_NAMES", "build_model", "build_model_for"]

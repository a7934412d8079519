"""Evaluation: clean error, white-box and black-box robustness, the paper's tables."""

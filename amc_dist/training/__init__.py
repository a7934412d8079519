"""Adversarial training, the attack mixture and the cascade: how robust models are fitted."""

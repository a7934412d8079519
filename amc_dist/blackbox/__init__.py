"""The black-box side: the oracle's predictive interfaces and proxies trained from its answers."""

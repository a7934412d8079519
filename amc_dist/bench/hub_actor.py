"""The metrics hub as `amc bench hub` runs it: the cluster's hub class, defined here so that its actor
process imports the latency filesystem (amclatency://) before it opens its first event log."""

from amc_dist.bench import latency_storage  # noqa: F401  (registers the protocol)
from amc_dist.distributed.hub import MetricsHub


class BenchHub(MetricsHub):
    """MetricsHub, unchanged."""

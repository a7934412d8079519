"""python -m amc_dist.launch: the whole experiment on a Ray cluster."""

"""The Ray layer: it distributes the experiment graph of `amc_dist.experiment`, never forks it."""

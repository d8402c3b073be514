"""Sources of the shipped dataset: definitions with PyTorch references, workloads, baselines."""

"""gpugrad benchmarks: each workload timed beside PyTorch eager in the same run."""

"""The experiment layer: training one network, cross-validation, tuning, reruns, benchmarks."""

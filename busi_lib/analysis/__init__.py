"""The analysis layer: statistics, comparisons, leakage, context reliance, the paper's claims."""

"""The network layer: the Residual-U-Net, the baselines, losses, optimisers, building and loading."""

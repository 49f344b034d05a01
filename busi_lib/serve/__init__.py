"""The serving layer: the predictor, reading users' images, the release and its model card."""

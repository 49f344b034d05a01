"""The evaluation layer: inference, metrics, mask shape, calibration, operating points, fusion."""

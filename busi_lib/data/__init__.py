"""The data layer: BUSI and its images, folds, enhancement and augmentation."""

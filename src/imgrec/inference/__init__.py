"""Inference: ``Predictor`` turns a run directory and images into typed predictions."""

from imgrec.inference.predictor import ImageInput, Predictor, collect_images

__all__ = ["ImageInput", "Predictor", "collect_images"]

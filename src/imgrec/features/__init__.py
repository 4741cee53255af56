"""Image feature extractors as scikit-learn transformers.

Each takes a prepared uint8 batch ``(N, H, W, 3)`` and returns float32 ``(N, D)``; grayscale
is derived inside when needed. They follow the scikit-learn contract (``__init__`` stores
parameters, ``fit`` returns self, learned attributes end in ``_``), so they compose with
``Pipeline`` and ``FeatureUnion`` and can be cloned. Importing this package imports
scikit-learn: import it only where features are used.

Example:
    >>> import numpy as np
    >>> from imgrec.features import HOGFeatures
    >>> HOGFeatures().fit_transform(np.zeros((2, 28, 28, 3), np.uint8)).shape
    (2, 2304)
"""

from imgrec.features._batch import BatchTransformer, check_batch
from imgrec.features.bovw import BagOfVisualWords
from imgrec.features.color import ColorHistogram, PixelFeatures
from imgrec.features.hog import HOGFeatures
from imgrec.features.lbp import LBPFeatures

__all__ = [
    "BagOfVisualWords",
    "BatchTransformer",
    "ColorHistogram",
    "HOGFeatures",
    "LBPFeatures",
    "PixelFeatures",
    "check_batch",
]

"""ReduNet: networks constructed in closed form by gradient ascent on the rate reduction (see docs/models.md)."""
from .circulant import block_circulant_operator, circulant_matrix
from .finetune import fine_tune
from .layer import ReduLayer, normalize_features
from .lift import Lift
from .network import ReduNet
from .operators import regularized_inverse

__all__ = ["ReduNet", "fine_tune", "ReduLayer", "Lift", "normalize_features", "regularized_inverse", "block_circulant_operator",
           "circulant_matrix"]

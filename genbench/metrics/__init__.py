"""Metrics as pure functions of statistics and features, and the registry that names them."""
from . import beyond_fid_registration as _beyond_fid_registration  # noqa: F401  (the registry is complete on import)
from . import prdc_registration as _prdc_registration  # noqa: F401
from .fid import frechet_distance, frechet_distance_from_stats
from .inception_score import inception_score
from .kid import kernel_inception_distance, polynomial_mmd2

__all__ = [
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "kernel_inception_distance",
    "polynomial_mmd2",
]

"""Mergeable feature statistics and their on-disk formats."""
from .feature_stats import FeatureStats

__all__ = ["FeatureStats"]

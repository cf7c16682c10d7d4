"""What a run leaves: result records, the results history, reports, pictures, plots and pages."""
from .records import RESULT_SCHEMA_VERSION, ScoreResult

__all__ = ["RESULT_SCHEMA_VERSION", "ScoreResult"]

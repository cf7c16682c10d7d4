"""What one extraction is asked to do: the input, the network, the options, and which per-image arrays to keep.

One :class:`ExtractionRequest` travels through the extraction layer in place of loose parameters:
:func:`genbench.extraction.distributed.extract_features`, :func:`genbench.extraction.engine.iter_chunks` and
:func:`genbench.extraction.cache.resumable_chunks` all take one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: this module stays free of torch and of the config module
    from ..config import ExtractOptions
    from ..features.base import FeatureExtractor
    from ..sources.base import ImageSource


@dataclass(frozen=True)
class ExtractionRequest:
    """What to extract: ``source`` through ``extractor`` under ``options``; which per-sample arrays to keep.

    ``role`` names the input in messages and progress bars ("generated", "reference", ...). ``keep_features`` and
    ``keep_logits``: whether the float32 per-image features and logits are kept (statistics always are);
    ``keep_logits`` is False whenever the extractor has no logits head (``logits_dim`` None), whatever was asked.
    ``label``, when given, replaces ``location (role)`` as the name of the input in messages (see :attr:`where`).
    """

    source: ImageSource
    extractor: FeatureExtractor
    options: ExtractOptions
    role: str = "generated"
    keep_features: bool = True
    keep_logits: bool = True
    label: str | None = None

    def __post_init__(self) -> None:
        # The one place where "keep logits" meets "the extractor has a logits head".
        if self.keep_logits and self.extractor.logits_dim is None:
            object.__setattr__(self, "keep_logits", False)

    @property
    def batch_size(self) -> int:
        """``options.batch_size``: None there only until ExtractOptions fills in the default, so never here."""
        size = self.options.batch_size
        assert size is not None  # ExtractOptions.__post_init__ replaces None by default_batch_size()
        return size

    @property
    def where(self) -> str:
        """The input as messages name it: ``label``, else ``"<location or kind> (<role>)"``."""
        if self.label is not None:
            return self.label
        return f"{self.source.location or self.source.kind} ({self.role})"

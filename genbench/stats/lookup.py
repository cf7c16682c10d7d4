"""Finding a reference by name, fetching a published one on its first use.

:func:`lookup_reference` is :func:`genbench.stats.reference.find_reference` (the stores as they are) plus the
download of a catalogue id not in the store yet (:func:`genbench.stats.fetch.fetch_reference`); it sits above both
modules so that neither imports the other's caller.
"""
from __future__ import annotations

from .catalogue import resolve
from .fetch import fetch_reference
from .reference import ManifestEntry, all_entries, find_reference


def lookup_reference(spec: str, extractor: str | None = None, preprocessing: str | None = None,
                     fetch: bool = True) -> ManifestEntry | None:
    """The entry for an id, or for ``dataset:split`` built with ``extractor`` (see
    :func:`~genbench.stats.reference.find_reference`). None if no match.

    A catalogue id not in the store yet is downloaded, checked and imported first (a progress bar on stderr)
    unless ``fetch`` is False. Raises ReferenceStatsError when that download or import fails.
    """
    hit = resolve(spec, extractor)
    if hit is not None and fetch:
        cat_entry, component = hit
        store_id = cat_entry.store_id(component)
        if not any(e.id == store_id for e in all_entries()):
            fetch_reference(cat_entry, progress=True)
    return find_reference(spec, extractor, preprocessing)

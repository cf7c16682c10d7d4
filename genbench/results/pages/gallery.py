"""The per-sample gallery of the report page: the best and worst generated samples by realism, and the
generated samples closest to the training set, each beside its nearest training image with the distance.

Fed by the per-sample arrays (:func:`genbench.metrics.per_sample.per_sample_arrays`: ``realism``,
``nearest_train_distance``, ``nearest_train_index``, ``authentic``) and two image readers (index -> uint8
[3, H, W]) for the generated and the training set. The pictures are PNG data URIs, so the section lives
inside the one-file report page. The closest pairs are the memorization verdict shown as pictures: a pair
marked "copy-like" failed Alaa et al.'s authenticity test (closer to its training image than that image is
to its own nearest training neighbour).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...errors import ConfigError
from ..pictures import image_grid
from . import html as h

if TYPE_CHECKING:
    from ...sources.base import ImageSource

#: Samples shown in each of the three rows by default.
GALLERY_K = 8
#: (key, heading, what it shows) of the three rows, in page order.
GROUPS = (("best", "Most realistic", "the highest realism scores"),
          ("worst", "Least realistic", "the lowest realism scores"),
          ("closest", "Closest to the training set", "the smallest distances to their nearest training image"))

ImageReader = Callable[[int], np.ndarray]


def gallery_picks(samples: Mapping[str, np.ndarray], k: int = GALLERY_K) -> dict[str, np.ndarray]:
    """Indices (int64, at most ``k`` each) of the generated samples each row shows, in the order shown.

    ``best``: realism descending; ``worst``: realism ascending; ``closest``: ``nearest_train_distance``
    ascending. Ties keep the sample order (stable sort); NaN scores come last. Raises ConfigError for a
    negative ``k`` or a missing column.
    """
    if k < 0:
        raise ConfigError(f"gallery size must be non-negative, got {k}")
    for column in ("realism", "nearest_train_distance", "nearest_train_index"):
        if column not in samples:
            raise ConfigError(f"the gallery needs the per-sample column {column!r}")
    realism = np.asarray(samples["realism"], dtype=np.float64)
    distance = np.asarray(samples["nearest_train_distance"], dtype=np.float64)
    best = np.argsort(np.where(np.isnan(realism), np.inf, -realism), kind="stable")
    return {"best": best[:k].astype(np.int64),
            "worst": np.argsort(realism, kind="stable")[:k].astype(np.int64),
            "closest": np.argsort(distance, kind="stable")[:k].astype(np.int64)}


def _picture(image: np.ndarray, alt: str, role: str) -> str:
    arr = np.asarray(image, dtype=np.uint8)
    side = int(arr.shape[-1])
    scale = max(1, min(4, 96 // max(side, 1)))
    data = h.png_bytes(image_grid(arr[None], columns=1, scale=scale, pad=0))
    return f'<img class="{role}" src="{h.png_uri(data)}" alt="{h.esc(alt)}">'


def _pair(samples: Mapping[str, np.ndarray], i: int, read_generated: ImageReader, read_train: ImageReader) -> str:
    j = int(samples["nearest_train_index"][i])
    d = float(samples["nearest_train_distance"][i])
    name = str(samples["source"][i]) if "source" in samples else f"#{i}"
    train_name = (str(samples["nearest_train_source"][i]) if "nearest_train_source" in samples else f"#{j}")
    copy_like = "authentic" in samples and not bool(samples["authentic"][i])
    flag = " <span class=copy>copy-like</span>" if copy_like else ""
    caption = (f"<span class=name>{h.esc(name)}</span> realism <span class=realism>{float(samples['realism'][i]):.4g}"
               f"</span><br>d = <span class=distance>{d:.4g}</span> to train {h.esc(train_name)}{flag}")
    return (f'<figure class="pair{" copy-like" if copy_like else ""}" data-index="{i}" data-train-index="{j}" '
            f'data-distance="{d!r}">{_picture(read_generated(i), f"generated {name}", "generated")}'
            f'{_picture(read_train(j), f"nearest training image {train_name}", "train")}'
            f"<figcaption>{caption}</figcaption></figure>")


GALLERY_CSS = ("<style>.pairs { display: flex; flex-wrap: wrap; gap: 12px; } "
               ".pairs figure.pair { margin: 0; padding: 6px; border: 1px solid var(--rule); } "
               ".pairs figure.copy-like { border-color: #b3261e; background: #fde7e4; } "
               ".pairs img { image-rendering: pixelated; margin-right: 3px; } .pairs img.generated { outline: 2px solid "
               "#d55e00; } .copy { color: #b3261e; font-weight: 700; }</style>")


def gallery_section(samples: Mapping[str, np.ndarray], read_generated: ImageReader, read_train: ImageReader,
                    k: int = GALLERY_K) -> str:
    """The gallery's HTML (a heading and three rows of pairs: generated image, nearest training image).

    Each pair is a ``figure.pair`` with ``data-index`` (generated), ``data-train-index`` and ``data-distance``;
    its caption prints the realism score and the distance (4 significant digits).
    """
    picks = gallery_picks(samples, k)
    n = len(samples["realism"])
    parts = [GALLERY_CSS, '<h2 id="gallery">Gallery</h2>',
             f"<p class=note>{n} generated samples; each pair: the generated image (outlined, left) and its nearest "
             "training image (right), with the feature-space distance between them.</p>"]
    if "authentic" in samples and n:
        copies = int(np.count_nonzero(~np.asarray(samples["authentic"], dtype=bool)))
        parts.append(f"<p class=note>Authenticity: {copies} of {n} generated samples "
                     f"({copies / n:.1%}) are copy-like (closer to their nearest training image than that image is "
                     "to its own nearest training neighbour); they are marked in red.</p>")
    for key, heading, what in GROUPS:
        pairs = "".join(_pair(samples, int(i), read_generated, read_train) for i in picks[key])
        parts.append(f'<section id="gallery-{key}"><h3>{h.esc(heading)}</h3><p class=note>The {len(picks[key])} '
                     f"samples with {h.esc(what)}.</p><div class=pairs>{pairs}</div></section>")
    return "\n".join(parts)


def open_gallery_images(spec: str, flag: str, data_dir: str | None = None) -> ImageSource:
    """The images of an input the gallery shows (a folder, archive, array file or data set), opened before any
    extraction. Raises ConfigError naming ``flag`` for a feature or statistics file, or any input that is not
    images here (a generator); InputError for a missing or unreadable one."""
    from ...errors import InputError
    from ...sources.resolve import is_feature_file, open_source

    if is_feature_file(spec):
        raise ConfigError(f"--gallery needs the images of {flag}, but {spec} is a feature or statistics file; pass "
                          "images (a folder, archive, array file or data set) or drop --gallery")
    try:
        return open_source(spec, data_dir=data_dir)
    except InputError as exc:
        raise ConfigError(f"--gallery needs the images of {flag}: {exc}") from None


def write_gallery_page(path: str | os.PathLike, doc: Mapping, samples: Mapping[str, np.ndarray],
                       generated: ImageSource, train: ImageSource, *, k: int = GALLERY_K,
                       overwrite: bool = False) -> Path:
    """Write the report page of score document ``doc`` with its gallery, atomically, to ``path``.

    ``generated`` and ``train`` must hold the images the per-sample rows index (the same count); ConfigError
    otherwise, and when ``path`` exists and ``overwrite`` is False.
    """
    from ...util.atomic import write_text_atomic
    from .report_page import render_report

    m = len(samples["realism"])
    if len(generated) != m:
        raise ConfigError(f"--gallery: the generated images ({len(generated)}) are not the {m} scored samples")
    top = int(np.max(samples["nearest_train_index"])) if m else -1
    if top >= len(train):
        raise ConfigError(f"--gallery: the training images ({len(train)}) are not the set the distances were "
                          f"measured to (index {top})")
    section = gallery_section(samples, generated.read, train.read, k)
    target = Path(path)
    write_text_atomic(target, render_report(doc, target.parent, gallery=section), overwrite=overwrite)
    return target

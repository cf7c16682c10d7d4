"""The extraction loop: chunks, exact sums, precision modes, and its errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genbench.config import ExtractOptions
from genbench.errors import ConfigError, InputError
from genbench.extraction.engine import chunk_ranges, iter_chunks, precision_deviation, precision_mode
from genbench.extraction.request import ExtractionRequest
from genbench.sources.arrays import ArraySource
from genbench.stats.feature_stats import FeatureStats
from tests.conftest import TinyExtractor, make_images


def direct(images_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return TinyExtractor()(torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous())["features"].double().numpy()


def test_chunk_ranges_are_whole_batches_covering_the_range():
    assert chunk_ranges(0, 100, 8, chunk_size=32) == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert chunk_ranges(50, 101, 64, chunk_size=32) == [(50, 101)]  # at least one batch per chunk
    assert chunk_ranges(7, 7, 8) == []


def test_a_request_names_its_input_and_keeps_no_logits_without_a_head():
    class Headless(TinyExtractor):
        logits_dim = None

    source, options = ArraySource(make_images(4, seed=0)), ExtractOptions(batch_size=4)
    request = ExtractionRequest(source, TinyExtractor(), options, "reference")
    assert request.where == f"{source.location or source.kind} (reference)"
    assert request.keep_features and request.keep_logits and request.batch_size == 4
    assert ExtractionRequest(source, TinyExtractor(), options, label="precision check (bf16)").where == \
        "precision check (bf16)"
    assert not ExtractionRequest(source, Headless(), options, keep_logits=True).keep_logits


def test_chunks_that_cut_through_batches_hold_exact_sums_of_their_images():
    images = make_images(30, seed=2)
    ranges = [(0, 10), (10, 25), (25, 30)]  # boundaries inside batches of 8
    request = ExtractionRequest(ArraySource(images, labels=np.arange(30)), TinyExtractor(),
                                ExtractOptions(batch_size=8, progress=False), "test", True, True)
    chunks = list(iter_chunks(request, ranges))
    expected = direct(images)
    assert [(c.start, c.stop) for c in chunks] == ranges
    for chunk in chunks:
        # float32 features match the network applied at another batch size up to float32 rounding ...
        np.testing.assert_allclose(chunk.features, expected[chunk.start:chunk.stop], rtol=1e-5, atol=1e-6)
        # ... and the float64 sums are those of exactly these features.
        f = chunk.features.astype(np.float64)
        assert chunk.stats.n == len(f) == chunk.stop - chunk.start
        np.testing.assert_allclose(chunk.stats.total, f.sum(0), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(chunk.stats.outer, f.T @ f, rtol=1e-13, atol=1e-13)
        assert chunk.logits.shape == (len(f), 5) and chunk.labels.tolist() == list(range(chunk.start, chunk.stop))


def test_features_only_when_kept_and_non_finite_output_is_named():
    images = make_images(12, seed=1)
    (chunk,) = iter_chunks(ExtractionRequest(ArraySource(images), TinyExtractor(), ExtractOptions(batch_size=4), "t",
                                             False, False), [(0, 12)])
    assert chunk.features is None and chunk.logits is None and chunk.stats.n == 12

    class Broken(TinyExtractor):
        calls = 0

        def forward(self, x):
            out = super().forward(x)
            Broken.calls += 1
            if Broken.calls == 3:  # the third batch: images 8..11
                out["features"][-1, 0] = float("nan")
            return out

    with pytest.raises(InputError, match=r"NaN or Inf features for images 8\.\.11"):
        list(iter_chunks(ExtractionRequest(ArraySource(images), Broken(), ExtractOptions(batch_size=4), "t", True, True),
                         [(0, 12)]))


def test_precision_modes_and_their_deviation_on_cpu():
    with pytest.raises(ConfigError, match="tf32.*CUDA"), precision_mode("tf32", torch.device("cpu")):
        pass
    with pytest.raises(ConfigError, match="--precision"), precision_mode("float16", torch.device("cpu")):
        pass
    images = make_images(64, seed=4)
    reference = FeatureStats.from_features(direct(make_images(64, seed=5)))
    check = precision_deviation(ArraySource(images), TinyExtractor(), ExtractOptions(batch_size=16, precision="bf16"),
                                reference, n_max=48)
    assert check["subset_n"] == 48
    # bfloat16 keeps 8 significant bits: a real but small deviation.
    assert 1e-5 < check["feature_rel_rms_dev"] < 2e-2
    assert 0 < check["fd_rel_dev"] < 0.05
    # The probe's float32 features come from batches of 16, direct() from one batch of 48: they may differ by a
    # few float32 ulps (CPU- and batch-size-dependent), which moves this FD of ~0.2 by up to ~1e-7 relative.
    assert check["fd_subset_float32"] == pytest.approx(
        _fd(FeatureStats.from_features(direct(images[:48])), reference), rel=1e-5)


def _fd(a: FeatureStats, b: FeatureStats) -> float:
    import warnings

    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # ReLU features: some dimensions are always zero
        covmean = linalg.sqrtm(a.cov() @ b.cov()).real  # scipy, as pytorch-fid does
    return float(((a.mean() - b.mean()) ** 2).sum() + np.trace(a.cov() + b.cov() - 2 * covmean))


# ----------------------------------------------------------------------------- CUDA (run by bench/gpu_all.sh)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_cuda_loop_matches_the_cpu_loop():
    images = make_images(100, seed=6)
    ranges = [(0, 40), (40, 100)]
    runs = {}
    for device in ("cpu", "cuda"):
        net = TinyExtractor().to(device)
        request = ExtractionRequest(ArraySource(images), net, ExtractOptions(batch_size=16, device=device), "t",
                                    True, True)
        runs[device] = list(iter_chunks(request, ranges))
    for a, b in zip(runs["cpu"], runs["cuda"]):
        np.testing.assert_allclose(b.features, a.features, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.logits, a.logits, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b.stats.outer, a.stats.outer, rtol=1e-5)
        assert b.stats.n == a.stats.n


@cuda
def test_float32_on_cuda_means_no_tf32_and_flags_are_restored():
    device = torch.device("cuda")
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    with precision_mode("float32", device):
        assert torch.backends.cuda.matmul.fp32_precision == "ieee" and torch.backends.cudnn.conv.fp32_precision == "ieee"
    with precision_mode("tf32", device):
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before


@cuda
def test_inception_on_cuda_float32_matches_the_cpu():
    from genbench.extraction.engine import prepare_extractor
    from genbench.features.inception import InceptionV3Extractor, random_state_dict

    state = random_state_dict(seed=3, calibration_size=75)
    images = make_images(8, seed=7, size=32)
    out = {}
    for device in ("cpu", "cuda"):
        net = prepare_extractor(InceptionV3Extractor(state, "0" * 64, device=device, backend="torch"), torch.device(device))
        request = ExtractionRequest(ArraySource(images), net, ExtractOptions(batch_size=4, device=device), "t", True, True)
        (chunk,) = iter_chunks(request, [(0, 8)])
        out[device] = chunk.features
    rel = np.linalg.norm(out["cuda"] - out["cpu"]) / np.linalg.norm(out["cpu"])
    assert rel < 1e-4  # true float32 on the GPU (TF32 would give ~1e-3)

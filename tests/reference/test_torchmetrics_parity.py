"""genbench.Evaluator against torchmetrics' FrechetInceptionDistance and KernelInceptionDistance.

Both sides load the same seeded random Inception weights (``inception_weights_file`` in conftest.py;
the real weights cannot be downloaded here) and see the same 2 x 8 seeded uint8 32x32 images.
torchmetrics' network is its own ``NoTrainInceptionV3`` (torch-fidelity's port) built with
``antialias=False``; genbench runs its eager torch network (the ONNX Runtime fast path is checked
against it in test_inception_parity.py).

Where the definitions agree (checked here):
* FD: float64 running sums (n, sum x, sum x x^T) of float32 pool3 features, unbiased (N-1)
  covariances, FD = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^{1/2}.
* KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3, subsets drawn without replacement, equal subset
  sizes on both sides, mean and population standard deviation (ddof 0) over subsets.

Where torchmetrics (1.9) differs, so that its numbers differ from genbench's and the reference tools':
* Resize: the default ``antialias=True`` resizes with torch's antialiased bilinear filter, not the
  TF1 bilinear resize of the original FID code (``antialias=False``; genbench's ``tf1-bilinear``).
* Float input: ``normalize=True`` maps [0, 1] floats with ``(x * 255).byte()``, which truncates;
  genbench rounds, ``round(x * 255)`` (``normalize=False``, the default, takes uint8 as is).
* FD's value comes back as float32 (cast to the features' dtype), and tr (S1 S2)^{1/2} is taken
  from the general, non-symmetric eigenvalues of S1 @ S2, whose round-off in the null space of a
  rank-deficient product (n < d, as here) moves FD by a few 1e-6 relative; genbench's symmetric
  route equals the exact value (FD restricted to the span of the features) to 1e-12. Its running sums
  are float64; ``set_dtype(torch.float64)`` also runs the network and the result in float64.
* KID keeps every feature (memory grows with the stream; genbench keeps a bounded reservoir), builds
  its kernels in the features' dtype (float32, about 1e-4 relative off here, unless
  ``set_dtype(torch.float64)``), draws subsets from the global torch generator (``torch.randperm``,
  no seed argument; genbench: a seeded numpy generator), raises when a side has fewer samples than
  ``subset_size`` (defaults subsets=100, subset_size=1000, the same as genbench's), and its
  constructor takes no weights path (a network module is passed here instead).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from genbench.config import MetricOptions
from genbench.evaluator import Evaluator
from genbench.features import fast_cpu
from genbench.metrics.kid import polynomial_mmd2
from genbench.stats.feature_stats import FeatureStats

pytestmark = [pytest.mark.reference, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")]

N = 8  # images a side: Inception on a shared 2-core CPU runs ~1-20 images/s


def _images(seed: int, freq: tuple[float, float], noise: float) -> torch.Tensor:
    """uint8 [N, 3, 32, 32]: seeded sinusoidal blobs plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    out = []
    for _ in range(N):
        phase = rng.uniform(0, 2 * np.pi, size=(3, 1, 1))
        f = rng.uniform(*freq, size=(3, 1, 1))
        smooth = 127.5 + 100 * np.sin(f * (xx + 0.7 * yy)[None] * np.pi + phase)
        out.append(np.clip(np.round(smooth + rng.normal(0, noise, size=(3, 32, 32))), 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out))


class _Replay(torch.nn.Module):
    """torchmetrics' network, run once per input tensor and replayed to the next metric fed that same tensor
    (FID and KID then see identical features, for half the forward passes)."""

    num_features = 2048  # read by torchmetrics instead of probing the network with a dummy image

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self._seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if id(x) not in self._seen:
            self._seen[id(x)] = (x, self.net(x))  # x is kept so its id is not reused
        return self._seen[id(x)][1]


@pytest.fixture(scope="module")
def runs(inception_weights_file):
    tm_fid = pytest.importorskip("torchmetrics.image.fid")
    tm_kid = pytest.importorskip("torchmetrics.image.kid")
    path, _ = inception_weights_file
    real, fake = _images(0, (1, 3), 10), _images(1, (4, 8), 40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fast_cpu, "onnxruntime_available", lambda: False)  # the eager torch network
        ev = Evaluator(real, metrics=["fid", "kid"], extractor="inception-v3", weights=str(path),
                       allow_unverified_weights=True, preprocessing="tf1-bilinear", cache=False, batch_size=4,
                       max_samples=N, metric_options=MetricOptions(kid_subsets=5, kid_subset_size=N))
        ev.update(fake[:3])  # any split: network batches of 4 counted from the first image
        ev.update(fake[3:])
        ours = ev.compute()
        state = ev.state_dict()
    assert ev.extractor.backend == "torch"

    net = _Replay(tm_fid.NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path),
                                            antialias=False))
    fid = tm_fid.FrechetInceptionDistance(feature=net)
    kid = tm_kid.KernelInceptionDistance(feature=net, subsets=5, subset_size=N)
    kid64 = tm_kid.KernelInceptionDistance(feature=net, subsets=5, subset_size=N)
    for metric in (fid, kid, kid64):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    kid64.set_dtype(torch.float64)  # after the updates: float32 features, float64 kernels
    with torch.random.fork_rng():
        torch.manual_seed(0)
        kid_values = kid.compute()
        torch.manual_seed(0)
        kid64_values = kid64.compute()
    return {"ours": ours, "state": state, "ev": ev, "fid": fid, "fid_value": fid.compute(), "kid": kid_values,
            "kid64": kid64_values, "tm_real": torch.cat(kid.real_features).double().numpy(),
            "tm_fake": torch.cat(kid.fake_features).double().numpy(), "real": real, "path": path, "tm_fid": tm_fid}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def test_fd_statistics_equal_torchmetrics(runs):
    """The running sums of both sides agree to float32 feature rounding (two ports of one network)."""
    ev, fid, state = runs["ev"], runs["fid"], runs["state"]
    ref = ev.reference.stats
    assert int(fid.real_features_num_samples) == ref.n == N and int(state["n"]) == N
    assert fid.real_features_sum.dtype == torch.float64  # torchmetrics 1.9 sums in float64
    for theirs, mine in ((fid.real_features_sum, ref.total), (fid.real_features_cov_sum, ref.outer),
                         (fid.fake_features_sum, state["total"]), (fid.fake_features_cov_sum, state["outer"])):
        mine = np.asarray(mine, dtype=np.float64)
        assert np.abs(theirs.numpy() - mine).max() / np.abs(mine).max() < 1e-5


def test_fd_equals_torchmetrics(runs):
    ours, theirs = runs["ours"].value("fid"), runs["fid_value"]
    assert theirs.dtype == torch.float32  # torchmetrics returns the features' dtype
    assert ours > 1.0
    assert _rel(ours, float(theirs)) < 2e-5


def test_fd_exact_in_the_span_of_the_features(runs):
    """With n < d both covariances live in the span of the 2N features: FD there (scipy sqrtm, 16 x 16) is
    the exact value. genbench's float64 FD on torchmetrics' own features equals it to 1e-7 (5e-9 seen on a fresh machine,
    3e-14 on another: BLAS rounding); torchmetrics'
    non-symmetric eigenvalue route on the same float64 covariances is near it only to ~1e-6."""
    real, fake = runs["tm_real"], runs["tm_fake"]
    basis, _ = np.linalg.qr(np.concatenate([real, fake]).T)  # [2048, 16] orthonormal
    mu_r, mu_f = (real @ basis).mean(0), (fake @ basis).mean(0)
    s_r, s_f = np.cov(real @ basis, rowvar=False), np.cov(fake @ basis, rowvar=False)
    exact = float(np.sum((mu_r - mu_f) ** 2) + np.trace(s_r) + np.trace(s_f)
                  - 2 * np.trace(scipy.linalg.sqrtm(s_r @ s_f)).real)
    a, b = FeatureStats.from_features(real), FeatureStats.from_features(fake)
    from genbench.metrics.fid import frechet_distance_from_stats

    assert _rel(frechet_distance_from_stats(a, b), exact) < 1e-7
    moments = (a.mean(), a.cov(), b.mean(), b.cov())
    tm_formula = float(runs["tm_fid"]._compute_fid(*(torch.from_numpy(x) for x in moments)))
    assert _rel(tm_formula, exact) < 2e-5


def test_kid_equals_torchmetrics(runs):
    """Every subset holds all N samples, so the mean is the full-sample MMD^2 whichever generator drew them."""
    ours = runs["ours"]["kid"]
    mean32, _ = runs["kid"]
    mean64, std64 = runs["kid64"]
    assert ours["subset_size"] == N and ours["mean"] > 0
    assert _rel(ours["mean"], float(mean64)) < 1e-4  # float32 features of the two ports; float64 kernels
    assert _rel(ours["mean"], float(mean32)) < 1e-3  # torchmetrics' float32 kernels
    assert abs(float(std64)) < 1e-9 * float(mean64) and abs(ours["std"]) < 1e-9 * ours["mean"]
    # On identical features genbench's estimator is torchmetrics' (float64) to rounding.
    assert _rel(polynomial_mmd2(runs["tm_fake"], runs["tm_real"]), float(mean64)) < 1e-9


def test_kid_subsets_and_std_follow_the_same_definition(runs):
    """torchmetrics' subsets (torch.randperm from the global generator) replayed through genbench's
    estimator give its mean and population std: same subset semantics, same std convention."""
    tm_kid = pytest.importorskip("torchmetrics.image.kid")
    real, fake = torch.from_numpy(runs["tm_real"]), torch.from_numpy(runs["tm_fake"])
    metric = tm_kid.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=6, subset_size=5)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        mean, std = metric.compute()
        torch.manual_seed(3)
        values = []
        for _ in range(6):
            r = torch.randperm(N)[:5]
            f = torch.randperm(N)[:5]
            values.append(polynomial_mmd2(fake[f].numpy(), real[r].numpy()))
    assert float(std) > 0
    assert _rel(float(np.mean(values)), float(mean)) < 1e-9
    assert _rel(float(np.std(values)), float(std)) < 1e-9


def test_default_antialias_resize_differs(runs):
    """torchmetrics' default resize (antialias=True) is not the TF1 bilinear resize: other features."""
    tm_fid = runs["tm_fid"]
    net = tm_fid.NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(runs["path"]))
    assert net.use_antialias  # the default
    with torch.no_grad():
        theirs = net(runs["real"][:2]).double().numpy()
    ours = runs["ev"].reference.features[:2]
    tf1 = runs["tm_real"][:2]
    assert np.abs(tf1 - ours).max() / np.abs(ours).max() < 1e-5
    assert np.abs(theirs - ours).max() / np.abs(ours).max() > 1e-3


def test_normalize_truncates_floats(runs):
    """normalize=True maps x in [0, 1] by (x * 255).byte() (truncation); genbench rounds."""
    from genbench.evaluator import _tensor_to_rgb_uint8

    tm_fid = runs["tm_fid"]
    metric = tm_fid.FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(runs["path"]),
                                             normalize=True)
    seen = []

    class Record(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return torch.zeros((x.shape[0], 2048))

    metric.inception = Record()  # the default network's input conversion, without a forward pass
    x = torch.full((2, 3, 5, 6), 100.7 / 255)
    metric.update(x, real=True)
    assert seen[0].dtype == torch.uint8 and int(seen[0].flatten()[0]) == 100
    assert int(_tensor_to_rgb_uint8(x, "x").flatten()[0]) == 101

"""py:MODULE:FUNCTION / py:FILE.py:FUNCTION generators (and callables) as an input of every verb."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import genbench
from genbench.cli.app import main
from genbench.errors import ConfigError, InputError
from genbench.sources.generator import CallableSource, GeneratorOptions
from tests.conftest import make_images

GEN = textwrap.dedent('''
    import numpy as np

    def _image(seed, index):
        rng = np.random.default_rng([seed, index])
        return (rng.uniform(0, 1, (4, 4, 3)).repeat(4, 0).repeat(4, 1) * 255).round().astype(np.uint8)

    def sample(n, seed, start):
        """Streamed: images start .. start+n-1 of the stream of seed, each seeded by (seed, index)."""
        images = np.stack([_image(seed, start + j) for j in range(n)])
        return images, np.array([(start + j) % 3 for j in range(n)])

    def whole(n, seed):
        """The one-call form (the leaderboard's): the same images."""
        return sample(n, seed, 0)[0]

    def tanh(n, seed, start):
        """Float output in [-1, 1]."""
        images, _ = sample(n, seed, start)
        return images.astype(np.float64) / 255 * 2 - 1

    def at_checkpoint(n, seed, start, checkpoint):
        images, _ = sample(n, seed, start)
        shift = int(open(checkpoint).read())
        return np.clip(images.astype(np.int64) + shift, 0, 255).astype(np.uint8)

    def wrong_count(n, seed):
        return sample(n + 1, seed, 0)[0]

    def broken(n, seed):
        raise RuntimeError("no GPU here")
''')


@pytest.fixture
def gen_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "gen.py"
    path.write_text(GEN)
    np.save(tmp_path / "ref.npy", make_images(400, seed=0))
    return path


def _drawn(spec: str, n: int, seed: int = 0, **kw) -> np.ndarray:
    return CallableSource(spec, GeneratorOptions(n, seed, **kw)).read_batch(0, n)


def _direct(n: int, seed: int) -> np.ndarray:
    """The same images made here (NHWC uint8), independently of genbench's source."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        out.append((rng.uniform(0, 1, (4, 4, 3)).repeat(4, 0).repeat(4, 1) * 255).round().astype(np.uint8))
    return np.stack(out)


SCORE = dict(extractor="test-tiny", metrics=["fd", "is", "kid"], kid_subset_size=100, kid_subsets=10, seed=3)


def test_a_generator_scores_as_its_samples_written_to_npz(gen_file, tmp_path):
    n = 300
    images = _direct(n, seed=5)
    np.savez(tmp_path / "samples.npz", images=images)
    from_file = genbench.score(str(tmp_path / "samples.npz"), str(tmp_path / "ref.npy"), **SCORE)
    for spec in ("py:gen.py:sample", "py:gen.py:whole", "py:gen:sample"):  # file, one-call form, module
        drawn = genbench.score(spec, str(tmp_path / "ref.npy"), num_samples=n, generator_seed=5, **SCORE)
        assert drawn.metrics == from_file.metrics, spec
    # in blocks other than the extraction batch: the same images
    assert np.array_equal(_drawn("py:gen.py:sample", n, 5, batch_size=7), images.transpose(0, 3, 1, 2))


def test_cli_score_with_num_samples_and_seed_records_the_callable(gen_file, tmp_path):
    done = CliRunner().invoke(main, ["score", "py:gen.py:sample", "--num-samples", "200", "--seed", "4", "--ref",
                                     "ref.npy", "--extractor", "test-tiny", "--kid-subset-size", "100", "-q",
                                     "--json", "-"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output[done.output.index("{"):])
    gen = doc["provenance"]["inputs"]["generated"]
    assert gen["kind"] == "callable" and gen["seed"] == 4 and gen["n"] == 200 and gen["form"] == "streamed"
    import hashlib

    assert gen["callable"]["file_sha256"] == hashlib.sha256(gen_file.read_bytes()).hexdigest()
    assert gen["callable"]["function"] == "sample"
    reference = genbench.score(_direct(200, 4), "ref.npy", extractor="test-tiny", kid_subset_size=100, seed=4)
    assert doc["metrics"]["fd_tiny"] == reference.metrics["fd_tiny"]


def test_labels_value_range_and_checkpoint(gen_file, tmp_path):
    src = CallableSource("py:gen.py:sample", GeneratorOptions(10, 0, batch_size=4))
    assert src.has_labels and src.labels().tolist() == [i % 3 for i in range(10)] and src.label(9) == 0
    direct = _direct(10, 0).transpose(0, 3, 1, 2)
    assert np.array_equal(_drawn("py:gen.py:tanh", 10, value_range=(-1.0, 1.0)), direct)
    with pytest.raises(InputError, match=r"float images must lie in \[0, 1\]"):
        _drawn("py:gen.py:tanh", 10)  # without the declared range
    (tmp_path / "ckpt-10.txt").write_text("10")
    shifted = _drawn("py:gen.py:at_checkpoint@ckpt-10.txt", 10)
    assert np.array_equal(shifted, np.clip(direct.astype(int) + 10, 0, 255).astype(np.uint8))


def test_the_cache_key_follows_the_file_the_seed_and_the_checkpoint(gen_file, tmp_path):
    def fp(spec: str, n: int = 8, seed: int = 0, **kw) -> str:
        return CallableSource(spec, GeneratorOptions(n, seed, **kw)).fingerprint()

    first = fp("py:gen.py:sample")
    assert first == fp("py:gen.py:sample") and first
    assert len({first, fp("py:gen.py:sample", seed=1), fp("py:gen.py:sample", n=9),
                fp("py:gen.py:sample", batch_size=3), fp("py:gen.py:whole")}) == 5
    (tmp_path / "c.txt").write_text("1")
    with_ckpt = fp("py:gen.py:at_checkpoint@c.txt")
    (tmp_path / "c.txt").write_text("2")
    assert fp("py:gen.py:at_checkpoint@c.txt") != with_ckpt
    gen_file.write_text(GEN + "\n# edited\n")
    assert fp("py:gen.py:sample") != first
    assert CallableSource(lambda n, seed: _direct(n, seed), GeneratorOptions(8)).fingerprint() == ""  # never cached


def test_an_edited_generator_is_never_a_stale_cache_hit(gen_file, tmp_path):
    args = dict(num_samples=100, extractor="test-tiny", metrics=["fd"], seed=0)
    before = genbench.score("py:gen.py:sample", "ref.npy", **args)
    again = genbench.score("py:gen.py:sample", "ref.npy", **args)
    assert again.provenance["inputs"]["generated"]["cache"] == "hit"
    gen_file.write_text(GEN.replace("* 255).round()", "* 200).round()"))
    after = genbench.score("py:gen.py:sample", "ref.npy", **args)
    assert after.provenance["inputs"]["generated"]["cache"] == "miss"
    assert after.metrics["fd_tiny"] != before.metrics["fd_tiny"]


def test_bad_generators_fail_before_extraction_naming_the_option(gen_file, tmp_path):
    runner = CliRunner()
    done = runner.invoke(main, ["score", "py:gen.py:sample", "--ref", "ref.npy", "--extractor", "test-tiny"])
    assert done.exit_code == 2 and "--num-samples" in done.output
    done = runner.invoke(main, ["score", "py:gen.py:broken", "--num-samples", "10", "--ref", "ref.npy"])
    assert done.exit_code == 2 and "raised RuntimeError: no GPU here" in done.output
    done = runner.invoke(main, ["score", "py:gen.py:wrong_count", "--num-samples", "10", "--ref", "ref.npy"])
    assert done.exit_code == 2 and "returned 11 images" in done.output
    done = runner.invoke(main, ["score", "py:gen.py:nothing", "--num-samples", "10", "--ref", "ref.npy"])
    assert done.exit_code == 2 and "no callable 'nothing'" in done.output
    done = runner.invoke(main, ["score", "py:gen.py:sample@missing.pt", "--num-samples", "10", "--ref", "ref.npy"])
    assert done.exit_code == 2 and "missing.pt does not exist" in done.output
    with pytest.raises(ConfigError, match="--value-range"):
        genbench.score("py:gen.py:tanh", "ref.npy", num_samples=10, value_range="1,-1")


def test_other_verbs_take_a_generator(gen_file, tmp_path):
    runner = CliRunner()
    done = runner.invoke(main, ["extract", "py:gen.py:sample", "--num-samples", "50", "-o", "f.npz", "--extractor",
                                "test-tiny", "-q", "--workers", "2"])
    assert done.exit_code == 0, done.output
    direct = genbench.extract(_direct(50, 0), extractor="test-tiny")
    saved = np.load(tmp_path / "f.npz")
    assert np.array_equal(saved["features"], direct.features) and saved["labels"].tolist()[:4] == [0, 1, 2, 0]
    for k in range(2):
        done = runner.invoke(main, ["stats", "py:gen.py:sample", "--num-samples", "300", "--shard", f"{k}/2", "-o",
                                    f"p{k}.npz", "--extractor", "test-tiny", "-q"])
        assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["merge", "p0.npz", "p1.npz", "-o", "s.npz", "-q"])
    assert done.exit_code == 0, done.output
    one = genbench.compute_stats(_direct(300, 0), extractor="test-tiny")[0]
    merged = genbench.stats.io.load_stats(tmp_path / "s.npz").stats
    assert np.allclose(merged.mean(), one.mean(), rtol=1e-12, atol=0)


def test_the_api_takes_a_function(gen_file, tmp_path):
    def mine(n: int, seed: int, start: int) -> np.ndarray:
        return _direct(start + n, seed)[start:]

    result = genbench.score(mine, "ref.npy", num_samples=120, extractor="test-tiny", metrics=["fd"])
    same = genbench.score(_direct(120, 0), "ref.npy", extractor="test-tiny", metrics=["fd"])
    assert result.metrics == same.metrics
    gen = result.provenance["inputs"]["generated"]
    assert gen["cache"] == "off" and gen["callable"]["function"].endswith("mine")  # no file to hash: not cached

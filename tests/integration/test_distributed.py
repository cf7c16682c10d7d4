"""torchrun with 2 CPU processes (gloo) gives the single-process result; shares are contiguous and equal."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.extraction.distributed import shard_range
from tests.conftest import make_images

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--extractor", "test-tiny", "--kid-subset-size", "50", "--kid-subsets", "5"]


@pytest.mark.parametrize("n, world, batch", [(101, 2, 1), (100, 4, 1), (7, 3, 1), (2, 4, 1), (50_001, 8, 1),
                                             (101, 2, 10), (50_000, 4, 250), (50_001, 8, 250), (5, 4, 2), (1000, 3, 64)])
def test_shares_are_contiguous_whole_batches_differing_by_at_most_one_batch(n, world, batch):
    shares = [shard_range(n, rank, world, batch) for rank in range(world)]
    assert shares[0][0] == 0 and shares[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(shares))
    assert all(start % batch == 0 for start, _ in shares)  # cut on the one-process run's batch boundaries
    batches = [-(-(stop - start) // batch) for start, stop in shares]
    assert max(batches) - min(batches) <= 1 and sum(batches) == -(-n // batch)
    sizes = [stop - start for start, stop in shares]
    assert sum(sizes) == n and max(sizes) - min(sizes) <= batch


def torchrun(*args: str, cache: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENBENCH_PLUGINS": "tests.plugins.tiny", "GENBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "genbench", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture
def arrays(tmp_path):
    gen, ref = tmp_path / "gen.npy", tmp_path / "ref.npy"
    np.save(gen, make_images(101, seed=1, shift=0.1))  # odd: shares of 50 and 51
    np.save(ref, make_images(120, seed=0))
    return gen, ref


@pytest.mark.slow
def test_two_processes_give_the_single_process_result_and_fill_the_cache(arrays, tmp_path, monkeypatch):
    gen, ref = arrays
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "single-cache"))
    single = CliRunner().invoke(main, ["score", str(gen), "--ref", str(ref), "--json", "-", "--quiet", *TINY])
    assert single.exit_code == 0, single.output
    expected = json.loads(single.stdout)

    cache = tmp_path / "cache"
    runs = [torchrun("score", str(gen), "--ref", str(ref), "--json", "-", "--quiet", *TINY, cache=cache) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    first, second = (json.loads(run.stdout) for run in runs)  # one document: rank 1 prints nothing
    for doc in (first, second):
        for name, entry in expected["metrics"].items():
            for field in ("value", "mean", "std"):
                if field in entry:
                    # torchrun workers run with other thread counts, which move float32 features by a few ulps
                    assert doc["metrics"][name][field] == pytest.approx(entry[field], rel=1e-6, abs=1e-9), name
    gen_info, ref_info = first["provenance"]["inputs"]["generated"], first["provenance"]["inputs"]["reference"]
    # Whole batches of 64 (the default): 101 images -> 1 + 1 batches, 120 -> 1 + 1.
    assert gen_info["world_size"] == 2 and gen_info["shard_sizes"] == [64, 37] and ref_info["shard_sizes"] == [64, 56]
    assert gen_info["cache"] == "miss"
    # Rank 0 assembled complete entries from both ranks' chunks, so the second run reads them.
    assert second["provenance"]["inputs"]["generated"]["cache"] == "hit"
    assert second["provenance"]["inputs"]["reference"]["cache"] == "hit"
    assert len(list((cache / "features").glob("??/*.npz"))) == 2


@pytest.mark.slow
def test_a_failure_on_one_rank_stops_every_rank_with_its_reason(tmp_path):
    from PIL import Image

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, im in enumerate(make_images(12, seed=0)):
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    (folder / "011.png").write_bytes(b"not a png")  # in rank 1's share (batches of 4: images 4..11)
    run = torchrun("stats", str(folder), "-o", str(tmp_path / "s.npz"), "--quiet", "--no-cache", "--extractor",
                   "test-tiny", "--batch-size", "4", cache=tmp_path / "cache")
    assert run.returncode != 0
    assert "011.png" in run.stderr and "rank 1 of 2" in run.stderr  # rank 1's own error, and rank 0's report of it
    assert not (tmp_path / "s.npz").exists()

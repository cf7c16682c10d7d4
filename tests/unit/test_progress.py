"""Progress of long phases (genbench.util.progress): one line per phase off a terminal, a live line on one,
nothing when disabled or short; step numbering; the hooks in k-NN, KID, bootstrap, k-means and the probes."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from genbench.util import progress
from genbench.util.progress import Reporter, Steps, final_line, format_duration, format_rate, live_line

#: The one line a phase leaves: "label: 1234 unit in 5.6 s (220 unit/s)" (or m:ss for long phases).
LINE = re.compile(r"^(?P<label>.+): (?P<done>\d+) (?P<unit>[a-z]+) in (?P<time>[\d.:]+(?: s)?) \((?P<rate>[\d.?]+) (?P=unit)/s\)$")


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 0.5) -> None:
        self.now += seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress, "_clock", fake)
    return fake


def run_phase(clock, stream, total, steps, unit="rows", label="k-NN", min_seconds=2.0):
    """``steps`` equal advances, 0.5 s apart."""
    with Reporter(stream=stream, min_seconds=min_seconds).phase(label, total, unit) as bar:
        for _ in range(steps):
            clock.tick(0.5)
            bar.advance(total // steps if total else 1)


# ----------------------------------------------------------------------------- formatting


def test_durations_rates_and_lines_read_at_a_glance():
    assert format_duration(0.44) == "0.4 s" and format_duration(12.34) == "12.3 s"
    assert format_duration(245) == "4:05" and format_duration(3723) == "1:02:03"
    assert format_rate(812.6, "images") == "813 images/s" and format_rate(12.54, "rows") == "12.5 rows/s"
    assert format_rate(0.4234, "replicates") == "0.42 replicates/s"
    assert final_line("extract generated", 10000, 10000, "images", 12.3) == \
        "extract generated: 10000 images in 12.3 s (813 images/s)"
    live = live_line("k-NN", 250, 1000, "rows", 5.0, width=120)
    # 50 rows/s, 750 rows left: ETA 15 s; a quarter of the bar filled.
    assert "250/1000 rows" in live and "5.0 s" in live and "50.0 rows/s" in live and "ETA 15.0 s" in live
    assert " 25%" in live and "[######------------------]" in live
    unknown = live_line("k-means", 7, None, "iterations", 2.0)
    assert "7 iterations" in unknown and "ETA" not in unknown and "%" not in unknown
    assert len(live_line("x" * 300, 1, 2, "rows", 1.0, width=80)) <= 80


# ----------------------------------------------------------------------------- the rules


def test_off_a_terminal_each_long_phase_leaves_exactly_one_line(clock):
    log = io.StringIO()
    run_phase(clock, log, 1000, 10, label="k-NN radii")  # 10 advances x 0.5 s: past the 2 s threshold
    run_phase(clock, log, 64, 8, unit="subsets", label="KID")
    run_phase(clock, log, 40, 4, unit="replicates", label="bootstrap")  # 2.0 s: just long enough
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m["label"], int(m["done"]), m["unit"]) for m in parsed] == [
        ("k-NN radii", 1000, "rows"), ("KID", 64, "subsets"), ("bootstrap", 40, "replicates")]
    assert [(m["time"], m["rate"]) for m in parsed] == [("5.0 s", "200"), ("4.0 s", "16.0"), ("2.0 s", "20.0")]


def test_short_phases_show_nothing_anywhere(clock):
    for stream in (io.StringIO(), Terminal()):
        run_phase(clock, stream, 100, 3)  # 1.5 s in all
        assert stream.getvalue() == ""


def test_on_a_terminal_a_live_line_with_elapsed_rate_and_eta(clock, monkeypatch):
    monkeypatch.setattr(progress, "_width", lambda: 120)
    tty = Terminal()
    run_phase(clock, tty, 1000, 10)
    out = tty.getvalue()
    frames = out.split("\r")[1:]
    assert len(frames) >= 3, out  # redrawn as it goes, once past 2 s
    live, last = frames[:-1], frames[-1]
    assert all(f.endswith("\x1b[K") for f in live)  # each redraw clears the rest of the old line
    assert all("ETA" in f and "rows/s" in f and "/1000 rows" in f and "%" in f for f in live)
    counts = [int(re.search(r"(\d+)/1000 rows", f).group(1)) for f in live]
    assert counts == [400, 500, 600, 700, 800, 900, 1000]  # from 2 s on (4th advance), at every advance
    assert "400/1000 rows  2.0 s  200 rows/s  ETA 3.0 s" in live[0]  # 600 rows left at 200 rows/s
    assert last == "k-NN: 1000 rows in 5.0 s (200 rows/s)\x1b[K\n" and out.count("\n") == 1


def test_a_phase_inside_a_phase_owns_the_line(clock):
    tty = Terminal()
    rep = Reporter(stream=tty)
    with rep.phase("outer", 10, "steps") as outer:
        outer.advance(1)
        with rep.phase("inner", 100, "rows") as inner:
            for _ in range(8):
                clock.tick(0.5)
                inner.advance(10)
                outer.advance(0)  # the outer phase does not redraw over the inner one
        clock.tick(0.5)
        outer.advance(1)
    frames = tty.getvalue().split("\r")[1:]
    inner_at = [i for i, f in enumerate(frames) if f.startswith("inner")]
    assert inner_at and not any(frames[i].startswith("outer") for i in range(inner_at[0], inner_at[-1]))
    assert tty.getvalue().count("\n") == 2  # one final line each


def test_disabled_means_silent_and_the_api_default_is_disabled(clock, capsys):
    assert not progress.is_enabled()
    with progress.current().phase("k-NN", 100, "rows") as bar:
        for _ in range(20):
            clock.tick(0.5)
            bar.advance(5)
    with progress.enabled(True), progress.enabled(False), progress.current().phase("x", 10) as bar:
        for _ in range(20):
            clock.tick(0.5)
            bar.advance(1)
    assert capsys.readouterr().err == ""
    with progress.enabled(True):
        with progress.current().phase("k-NN", 100, "rows") as bar:
            for _ in range(20):
                clock.tick(0.5)
                bar.advance(5)
    assert capsys.readouterr().err.splitlines() == ["k-NN: 100 rows in 10.0 s (10.0 rows/s)"]


def test_steps_number_the_phases_inside_them(clock):
    log = io.StringIO()
    steps = Steps(3)
    rep = Reporter(stream=log, min_seconds=0)
    for name in ("reference", "samples", "blur=1"):
        with steps.step():
            with rep.phase(f"extract {name}", 10, "images") as bar:
                bar.advance(10)
    with rep.phase("after", 1, "items") as bar:  # outside any step: no prefix
        bar.advance(1)
    labels = [LINE.match(line)["label"] for line in log.getvalue().splitlines()]
    assert labels == ["step 1 of 3: extract reference", "step 2 of 3: extract samples", "step 3 of 3: extract blur=1",
                      "after"]


def test_a_failing_phase_still_leaves_its_line_and_the_error_passes(clock):
    log = io.StringIO()
    with pytest.raises(RuntimeError):
        with Reporter(stream=log).phase("k-NN", 100, "rows") as bar:
            for _ in range(6):
                clock.tick(0.5)
                bar.advance(10)
            raise RuntimeError("boom")
    assert log.getvalue() == "k-NN: stopped after 60/100 rows in 3.0 s (20.0 rows/s)\n"


# ----------------------------------------------------------------------------- the hooks


def _lines(text: str) -> list[re.Match]:
    found = [LINE.match(line) for line in text.splitlines() if line.strip()]
    assert all(found), text
    return found


def test_prdc_kid_bootstrap_and_kmeans_report_their_work(monkeypatch):
    from genbench.metrics.bootstrap import bootstrap_frechet_interval
    from genbench.metrics.kid import kernel_inception_distance
    from genbench.metrics.memorization import data_copying_ct
    from genbench.metrics.prdc import prdc
    from genbench.stats.feature_stats import FeatureStats

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 8)), rng.normal(0.2, 1.0, size=(200, 8))
    log = io.StringIO()
    rep = Reporter(stream=log, min_seconds=0)
    quiet = prdc(real, fake, chunk_size=64)
    shown = prdc(real, fake, chunk_size=64, progress=rep)
    assert shown == quiet  # progress changes nothing
    found = _lines(log.getvalue())
    assert [(m["label"].split(" (")[0].split(":")[0], int(m["done"])) for m in found] == [
        ("k-NN radii of the reference", 300), ("k-NN radii of the generated samples", 200), ("k-NN balls", 300)]

    done = []
    kernel_inception_distance(fake, real, subsets=7, subset_size=50, seed=0, on_subset=done.append)
    bootstrap_frechet_interval(fake, FeatureStats.from_features(real), 5, seed=0, on_replicate=done.append)
    assert done == [1] * 12

    log = io.StringIO()
    train = rng.normal(size=(400, 4))
    data_copying_ct(train, rng.normal(size=(150, 4)), rng.normal(size=(150, 4)), seed=0, n_cells=3,
                    progress=Reporter(stream=log, min_seconds=0))
    (kmeans,) = _lines(log.getvalue())
    assert kmeans["label"] == "k-means (3 cells) on the training set" and kmeans["unit"] == "iterations"
    assert 1 <= int(kmeans["done"]) <= 100


def test_the_sensitivity_probe_numbers_every_step(monkeypatch, capsys):
    from genbench.config import ExtractOptions, MetricOptions
    from genbench.probes.sensitivity import SensitivityOptions, run_sensitivity_probe
    from tests.conftest import make_images

    monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
    xo = ExtractOptions(extractor="test-tiny", cache=False, progress=True, batch_size=16)
    opts = SensitivityOptions(transforms=("gaussian-blur", "jpeg"), metrics=("fd", "kid"), max_samples=None,
                              strengths={"gaussian-blur": (0, 1, 2), "jpeg": (0, 50)})
    run_sensitivity_probe(make_images(40, seed=1), make_images(50, seed=0), opts, xo,
                          MetricOptions(kid_subsets=3, kid_subset_size=20))
    found = _lines(capsys.readouterr().err)
    steps = [re.match(r"step (\d+) of (\d+): (.*)", m["label"]) for m in found]
    assert all(steps), [m["label"] for m in found]
    # reference, samples, blur=1, blur=2, jpeg=50: five steps, one extraction each, numbered in order;
    # KID's subsets are a phase of the step whose point they score.
    extractions = [(int(s[1]), int(s[2]), s[3]) for s in steps if s[3].startswith("extract")]
    assert extractions == [(1, 5, "extract reference"), (2, 5, "extract samples"), (3, 5, "extract gaussian-blur=1"),
                           (4, 5, "extract gaussian-blur=2"), (5, 5, "extract jpeg=50")]
    kid_steps = [int(s[1]) for s in steps if s[3].startswith("KID")]
    assert kid_steps == [2, 3, 4, 5]


def test_score_on_the_command_line_one_line_per_phase_and_quiet_silences_it(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from genbench.cli.app import main
    from tests.conftest import make_images

    monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
    gen, ref = tmp_path / "gen.npy", tmp_path / "ref.npy"
    np.save(gen, make_images(40, seed=1, shift=0.1))
    np.save(ref, make_images(50, seed=0))
    args = ["score", str(gen), "--ref", str(ref), "--extractor", "test-tiny", "--no-cache", "--metrics",
            "fd,kid,precision", "--kid-subsets", "4", "--kid-subset-size", "20", "--bootstrap", "6"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    found = _lines(res.stderr)
    labels = [m["label"] for m in found]
    assert labels[:2] == ["extract reference", "extract generated"]
    assert {"bootstrap interval of FD", "KID over 4 subsets of 20"} <= set(labels)
    assert sum(label.startswith("k-NN") for label in labels) == 3
    assert len(labels) == len(set(labels))  # each phase exactly once
    assert "fd_tiny" in res.stdout and "fd_tiny" not in res.stderr
    quiet = CliRunner().invoke(main, [*args, "-q"], catch_exceptions=False)
    assert quiet.exit_code == 0 and quiet.stderr == "" and "fd_tiny" in quiet.stdout

"""The default --batch-size: per extractor and device type (genbench.config.BATCH_SIZES), stated in the help."""
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.config import BATCH_SIZES, DEFAULT_BATCH_SIZE, ExtractOptions, default_batch_size


def test_rule():
    assert BATCH_SIZES == {("fmnist-cnn", "cpu"): 256, ("inception-v3", "cpu"): 32}
    assert default_batch_size("fmnist-cnn", "cpu") == 256
    assert default_batch_size("inception-v3", "cpu") == 32
    assert default_batch_size("fmnist-cnn", "cuda:1") == DEFAULT_BATCH_SIZE == 64  # CUDA not measured yet
    assert default_batch_size("test-tiny", "cpu") == 64
    assert default_batch_size(None, "cpu") == 64  # extractor not known yet (it may follow the reference)


def test_extract_options_resolve_an_unset_batch_size():
    assert ExtractOptions(extractor="fmnist-cnn").batch_size == 256
    assert ExtractOptions(extractor="fmnist-cnn", batch_size=64).batch_size == 64  # given: kept
    follow = ExtractOptions()  # extractor None: follow the reference
    assert follow.batch_size == 64
    assert follow.for_extractor("fmnist-cnn").batch_size == 256
    assert follow.for_extractor("inception-v3").batch_size == 32
    assert ExtractOptions(batch_size=64).for_extractor("fmnist-cnn").batch_size == 64  # given: kept
    chosen = follow.for_extractor("fmnist-cnn")
    assert chosen.for_extractor("fmnist-cnn") is chosen


def test_cli_help_states_the_rule():
    out = CliRunner().invoke(main, ["score", "--help"], terminal_width=200)
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    assert "256 for fmnist-cnn on cpu; 32 for inception-v3 on cpu; 64 otherwise" in text

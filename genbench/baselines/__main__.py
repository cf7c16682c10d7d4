"""``python -m genbench.baselines NAME [--dry-run] [--bundle] ...``: train a baseline (see baselines.train.main)."""
from .train import main

main(prog_name="python -m genbench.baselines")

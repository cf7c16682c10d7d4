"""``python -m genbench`` is the CLI (also under torchrun)."""
from .cli.app import run

run()

"""``python -m genbench`` is the CLI (also under torchrun)."""
from .cli import run

run()

"""`python -m scale_datasets.cli`, the same as the `scale-datasets` command."""

from .app import main

main()

"""`python -m scale_datasets`, the same as the `scale-datasets` command."""

from .cli.app import main

main()

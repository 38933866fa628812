"""The `scale-datasets` command line (installed as scale_datasets.cli)."""

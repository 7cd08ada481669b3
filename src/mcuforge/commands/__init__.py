"""CLI subcommands, one module each (see `mcuforge.cli`)."""

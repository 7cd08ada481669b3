"""The CLI's subcommands, one module each exposing a click command called ``command``
(`mcuforge.cli` finds them by name), and the options every command shares (`hardware`:
``--board``, ``--core`` and the deprecated ``--target``).

May import: every layer below it in `mcuforge.layers` (up to pipeline); not cli."""

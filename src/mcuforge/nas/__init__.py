"""TinyNAS (MCUNet): search space (`space`), closed-form profiling (`fast_profile`, checked against
`analysis`), constraints (`constraints`, `latency`, `latency_calibration`), stage 1
(`space_opt`), the elastic supernet (`elastic`, `supernet`) and its sandwich-rule training
(`sandwich`, DDP-ready), the fitness (`fitness`), evolutionary and random search (`evolution`),
the checks and deployment of the winner (`winner`, `deploy`), the whole run as named stages
(`pipeline`, `search_context`, `settings`) and its report (`search_report`).

May import: every layer below it in `mcuforge.layers` (up to report); not pipeline, commands or
cli."""

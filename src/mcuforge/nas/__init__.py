"""TinyNAS (MCUNet): search space (`space`), closed-form profiling (`fast_profile`), constraints
(`constraints`, `latency`, `latency_calibration`), stage 1 (`space_opt`), the elastic supernet
(`elastic`, `supernet`) and its sandwich-rule training (`sandwich`, DDP-ready), the fitness
(`fitness`), evolutionary and random search (`evolution`), deployment of the winner (`deploy`), the
whole run (`pipeline`, `settings`) and its report (`search_report`)."""

"""C code generation: an int8 graph becomes a self-contained C project with no interpreter and no heap.

- `emit`: strip float edge conversions (`edges`), lower every op to a specialised kernel call
  (`lower_conv`, `lower_misc`, `layers`, `kernels`), plan the one static arena
  (`planner.arena`), render model.h / model.c / kernels / runners / Makefile from `templates/`.
- `targets`: compiler flags of host, cortex-m4 and cortex-m7 (MPS2 boards under QEMU).
- `build`, `qemu`, `unicorn_count` (with `elf`): build, run and measure the project.
- `project.compile_model`: generate + build + measure into a folder with report.json.
- `verify`, `samples`: bit-exact differential check against the reference runtime.
- `patch_emit`: the same for patch-based schedules (any grid; halo caching in row strips).
"""

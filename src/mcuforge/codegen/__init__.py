"""C code generation: an int8 graph becomes a self-contained C project with no interpreter and no
heap.

- `emit`: strip float edge conversions (`edges`), lower every op to a specialised kernel call
  (each op module's `OpDef.lower`, `mcuforge.ops`; `layers`, `kernels`), plan the one static arena
  (`planner.arena`), render model.h / model.c / kernels / runners / Makefile from `templates/`.
- `patch_emit`, `patch_halo_emit`: the same for patch-based schedules (any grid; halo caches).
- `targets`: compiler flags of host, cortex-m4 and cortex-m7 (MPS2 boards under QEMU).
- `build`, `qemu`, `unicorn_count` (with `elf`): build, run and measure the project.
- `project.compile_model`: generate + build + measure into a folder with report.json.
- `postprocess`: C modules the runners apply to every inference's outputs (detection's NMS).
- `verify`, `samples`: bit-exact differential check against the reference runtime.

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith, ir,
ops, models, analysis, planner, patch, runtime (the layers below it in `mcuforge.layers`); not
frontends (it takes a `Graph`, never a file) or anything above."""

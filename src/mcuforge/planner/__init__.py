"""The static arena planner: one buffer, an offset for every activation tensor, kernel scratch in
the gaps (`arena`, with the offset search of `placement`), and the proof that a plan is sound
(`verify`: every byte has one owner at every op, save legal overlaps). It reads the lifetimes and
overlap rules of `analysis`, so its arena is never below the analytic peak.

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith, ir,
ops, models, analysis (the layers below it in `mcuforge.layers`); not patch, runtime, codegen or
anything above."""

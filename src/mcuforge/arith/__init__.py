"""Integer arithmetic of TFLite's int8 kernels, in numpy: fixed-point multipliers and shifts
(`fixedpoint`), gemmlowp's rounding and exp/logistic/tanh approximations (`gemmlowp`), and the
packing of int4 weights two to a byte (`int4`). The lowest layer that knows numbers: the IR, the
ops, the runtime and the C lowering all use it.

May import: errors (and the foundation modules and stages below it in `mcuforge.layers`); nothing
above: not ir or any package that knows graphs."""

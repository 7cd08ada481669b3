"""Integer arithmetic of TFLite's int8 kernels: fixed-point multipliers and shifts (`fixedpoint`) and
gemmlowp's rounding and exp/logistic/tanh approximations (`gemmlowp`), in numpy. The bottom layer:
the runtime, the ops and the C lowering all use it. May import: errors."""

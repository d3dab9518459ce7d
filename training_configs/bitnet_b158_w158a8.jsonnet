// BitNet b1.58-style (Ma et al., 2024): ternary absmean weights {-1, 0, +1} * gamma with one
// gamma = mean|W| per matrix, and 8-bit absmax per-token activations into every encoder linear.
// Distilled from the teacher's MLM distribution and hidden states.
local lib = import "lib/distillation.libsonnet";

lib.recipe(
  knobs={ weights: "ternary", weight_scale: "per_tensor", activations: "int8" },
  loss_weights={ soft_ce: 1.0, hidden: 1.0 },
  init_from="runs/teacher/best.th",
)

// BiT-style multi-step distillation (Liu et al., 2022), stage 1 of 2: binary weights with 8-bit
// (absmax per token) activations, from the full-precision teacher's weights. Stage 2
// (bit_stage2_w1a1.jsonnet) starts from this stage's archive: train this into runs/bit_stage1.
local lib = import "lib/distillation.libsonnet";

lib.recipe(
  knobs={ weights: "binary", weight_scale: "mean_abs", center_weights: true, activations: "int8" },
  loss_weights={ soft_ce: 1.0, hidden: 1.0 },
  init_from="runs/teacher/best.th",
)

// XNOR-Net / BWN weights only (W1, real activations): every encoder linear is alpha * sign(W)
// with the analytic per-channel alpha = mean|W|; activations and attention stay full precision,
// the word and position tables train int8 (every recipe's default, lib.recipe). Distilled from the teacher's MLM distribution and hidden states (TinyBERT's
// layer-wise recipe, one-to-one layer map), plus the MLM loss.
local lib = import "lib/distillation.libsonnet";

lib.recipe(
  knobs={ weights: "binary", weight_scale: "mean_abs", activations: "real" },
  loss_weights={ mlm: 0.5, soft_ce: 1.0, hidden: 1.0 },
  init_from="runs/teacher/best.th",
)

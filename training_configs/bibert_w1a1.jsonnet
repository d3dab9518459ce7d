// BiBERT-style W1A1 (Qin et al., 2022): binary weights (centred, mean|W| scale) and 1-bit
// inputs to every linear; Bi-Attention (attention weights = 1[score >= 0]) over 1-bit Q, K, V;
// distilled with direction-matching distillation (normalised Gram matrices of Q, K, V in every
// layer) and the teacher's MLM distribution.
local lib = import "lib/distillation.libsonnet";

lib.recipe(
  knobs={
    weights: "binary",
    weight_scale: "mean_abs",
    center_weights: true,
    activations: "sign",
    attention: "bi_attention",
    attention_activations: "sign",
  },
  loss_weights={ soft_ce: 1.0, direction: 1.0 },
  init_from="runs/teacher/best.th",
)

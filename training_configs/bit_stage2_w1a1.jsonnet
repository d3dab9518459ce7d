// BiT-style multi-step distillation, stage 2 of 2: W1A1 with BiT's elastic binarization
// (learned alpha and beta) of every linear's inputs, {0, alpha} two-set binarization of the
// non-negative post-GELU inputs of the FFN output and of the attention probabilities, and
// elastic 1-bit Q, K, V in the attention matmuls. Initialised from stage 1's archive
// (runs/bit_stage1/model.tar.gz, bit_stage1_w1a8.jsonnet); the new alpha/beta start from data.
local lib = import "lib/distillation.libsonnet";

lib.recipe(
  knobs={
    weights: "binary",
    weight_scale: "mean_abs",
    center_weights: true,
    activations: "elastic",
    component_overrides: { ffn_out: { activations: "two_set" } },
    attention_activations: "elastic",
    attention_probs: "two_set",
  },
  loss_weights={ soft_ce: 1.0, hidden: 1.0 },
  init_from="runs/bit_stage1/model.tar.gz",
)

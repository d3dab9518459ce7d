// BiT stage 2 (bit_stage2_w1a1.jsonnet) with its word and position tables trained as absmax int8
// per row (lib.int8_tables). A W1A1 model binarizes its first layer's inputs, so rounding its
// fp32-trained tables at export, which training never saw, moves its PTB perplexity by up to
// 1.8% (results/table_sensitivity.json); trained int8, the tables export exactly.
local lib = import "lib/distillation.libsonnet";

lib.int8_tables(import "bit_stage2_w1a1.jsonnet")

// BiT stage 1 (bit_stage1_w1a8.jsonnet) with its word and position tables trained as absmax int8
// per row (lib.int8_tables), so that the default 8-bit export adds no rounding to the tied MLM
// decoder, whose rounding moves the fp32-trained model's PTB perplexity by 0.3-0.4%.
local lib = import "lib/distillation.libsonnet";

lib.int8_tables(import "bit_stage1_w1a8.jsonnet")

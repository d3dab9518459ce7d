// Embedded default (README's main job, a couple of minutes on 2 CPU cores): data-free
// binarization of the pretrained all-MiniLM-L6-v2 encoder, then masked-LM training on the first
// blocks of WikiText-2 train, validated on the first blocks of WikiText-2 valid. The checkpoint
// has no masked-LM head, so the head starts random: expect a high perplexity from so short a run.
// W1A8 (1-bit weights, 8-bit activations per token), so that the packed export runs the integer
// kernels a user would deploy: its encoder ran 1.66x ONNX Runtime int8 on Zen 4, where W1A32 (real
// activations: a float GEMM on unpacked weights) ran 0.48x, at about the same perplexity after
// this short run (1124.5 against 1116.6; README, the main job).
local encoder = "../shared/data/models/all-MiniLM-L6-v2";
local data_dir = "../shared/data/wikitext-2";
local max_length = 64;
local batch_size = 16;

local reader = {
  type: "bitmaps_masked_lm_corpus",
  model_name: encoder,
  max_length: max_length,
};

{
  dataset_reader: reader + { max_instances: 640 },
  validation_dataset_reader: reader + { deterministic_masking: true, max_instances: 160 },
  train_data_path: data_dir + "/train.txt",
  validation_data_path: data_dir + "/valid.txt",
  vocabulary: { type: "bitmaps_wordpiece", model_name: encoder },
  model: {
    type: "bitmaps_masked_lm",
    text_field_embedder: {
      token_embedders: {
        tokens: { type: "bitmaps_binary_bert", model_name: encoder, binarize: true, activations: "int8" },
      },
    },
  },
  data_loader: { batch_size: batch_size, shuffle: true },
  validation_data_loader: { batch_size: 32, shuffle: false },
  trainer: {
    num_epochs: 2,
    validation_metric: "-perplexity",
    grad_norm: 1.0,
    optimizer: { type: "bitmaps_adamw", lr: 5e-4 },
    learning_rate_scheduler: { type: "linear_with_warmup", warmup_steps: 10 },
  },
}

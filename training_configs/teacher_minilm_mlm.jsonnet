// The offline teacher: the pretrained all-MiniLM-L6-v2 BERT encoder (full precision; the
// checkpoint has no masked-LM head) plus a new masked-LM head, trained on WikiText-2 train and
// validated on WikiText-2 valid with deterministic masks.
// Paths are relative to the repository root; override them with -o, e.g.
//   -o '{"train_data_path": "/data/wiki.train.tokens", "validation_data_path": "/data/wiki.valid.tokens"}'
local encoder = "../shared/data/models/all-MiniLM-L6-v2";
local data_dir = "../shared/data/wikitext-2";
local max_length = 128;
local batch_size = 32;
local batches_per_epoch = 200;

local reader = {
  type: "bitmaps_masked_lm_corpus",
  model_name: encoder,
  max_length: max_length,
};

{
  dataset_reader: reader,
  validation_dataset_reader: reader + { deterministic_masking: true },
  train_data_path: data_dir + "/train.txt",
  validation_data_path: data_dir + "/valid.txt",
  vocabulary: { type: "bitmaps_wordpiece", model_name: encoder },
  model: {
    type: "bitmaps_masked_lm",
    text_field_embedder: {
      token_embedders: {
        tokens: { type: "bitmaps_binary_bert", model_name: encoder, binarize: false },
      },
    },
  },
  data_loader: {
    batch_size: batch_size,
    shuffle: true,
    // Re-read (and so re-mask) the corpus every pass instead of caching one masking.
    max_instances_in_memory: batch_size * 100,
    batches_per_epoch: batches_per_epoch,
  },
  validation_data_loader: { batch_size: 64, shuffle: false },
  trainer: {
    num_epochs: 4,
    validation_metric: "-perplexity",
    grad_norm: 1.0,
    optimizer: {
      type: "bitmaps_adamw",
      lr: 1e-4,
      weight_decay: 0.01,
      parameter_groups: [[["bias", "LayerNorm\\.weight", "layer_norm\\.weight"], { weight_decay: 0.0 }]],
    },
    learning_rate_scheduler: { type: "linear_with_warmup", warmup_steps: 80 },
    checkpointer: { keep_most_recent_by_count: 2 },
  },
}

// The binarized student: every encoder linear of the trained teacher (teacher_minilm_mlm.jsonnet)
// becomes alpha * sign(W) with alpha = mean|W| per output channel (BWN weights, real
// activations), initialised from the teacher's weights (the data-free conversion), then trained
// with the masked-LM loss on WikiText-2 train. Distillation is configured elsewhere.
// Train the teacher first (its weights file is runs/teacher/best.th), or point
// model.initializer at another weights file with -o.
local encoder = "../shared/data/models/all-MiniLM-L6-v2";
local data_dir = "../shared/data/wikitext-2";
local teacher_weights = "runs/teacher/best.th";
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
        tokens: {
          type: "bitmaps_binary_bert",
          model_name: encoder,
          binarize: true,
          binarized_components: ["query", "key", "value", "attention_output", "ffn_in", "ffn_out"],
          weight_scale: "mean_abs",
        },
      },
    },
    // Start from the full-precision teacher (its encoder weights become the latent weights;
    // bitmaps_start_from: AllenNLP's `pretrained`, naming a missing file).
    initializer: {
      regexes: [[".*", { type: "bitmaps_start_from", weights_file_path: teacher_weights }]],
    },
  },
  data_loader: {
    batch_size: batch_size,
    shuffle: true,
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
      weight_decay: 0.0,
    },
    learning_rate_scheduler: { type: "linear_with_warmup", warmup_steps: 80 },
    checkpointer: { keep_most_recent_by_count: 2 },
  },
}

// What every distillation recipe shares: the offline teacher (the fine-tuned MiniLM masked LM,
// training_configs/teacher_minilm_mlm.jsonnet), WikiText-2 train with fresh random masks every
// pass, validation on WikiText-2 valid with deterministic masks, and a student initialised from
// a weights file or archive (the teacher's, or the previous stage's for multi-step recipes).
// A recipe passes the student's `bitmaps_binary_bert` knobs and the distillation loss weights.
{
  encoder:: "../shared/data/models/all-MiniLM-L6-v2",
  data_dir:: "../shared/data/wikitext-2",
  teacher:: "runs/teacher/model.tar.gz",

  // The word and position tables of every recipe train as absmax int8 per row (`weights: "int8"`;
  // the tied MLM decoder reads the same int8 word table), the format the default export stores.
  // The export keeps such tables as they are (the packed `int8` table format), so the packed file
  // computes what was trained, where rounding fp32-trained tables at export moves PTB perplexity
  // by 0.1-0.4% (by up to 1.8% on a W1A1 model, whose first layer binarizes the tables' sum;
  // README, packed parity). tables="fp32" keeps them full precision, as the recipes trained
  // before (their README figures say which).
  table_weights:: { int8: "int8", fp32: null },
  tables_as(tables, tokens)::
    assert std.objectHas($.table_weights, tables) : 'lib.recipe: tables must be "int8" or "fp32", got "%s"' % tables;
    if $.table_weights[tables] == null then tokens else tokens + {
      local names = ["word_embeddings", "position_embeddings"],
      local linears = ["query", "key", "value", "attention_output", "ffn_in", "ffn_out"],
      binarized_components: (if "binarized_components" in super then super.binarized_components else linears) + names,
      component_overrides+: { [t]: { weights: $.table_weights[tables] } for t in names },
    },

  // lr: AdamW's peak. 1e-3 since 2026-12-06: at this 200-step budget it beat 2e-4 on every recipe
  // (results/lr_probe_recipes.json: BiT stage 1 167.3 -> 116.4 validation perplexity, BitNet
  // 141.5 -> 103.8, XNOR W1 164.4 -> 113.4, BiT stage 2 620.4 -> 484.7, BiBERT 954.7 -> 941.2),
  // and at 2,000 steps on all four recipes run there (README, real budgets).
  recipe(knobs, loss_weights, init_from, steps_per_epoch=100, num_epochs=2, lr=1e-3, batch_size=16,
         distillation={}, tables="int8"):: {
    local encoder = $.encoder,
    local reader = { type: "bitmaps_masked_lm_corpus", model_name: encoder, max_length: 128 },
    dataset_reader: reader,
    validation_dataset_reader: reader + { deterministic_masking: true },
    train_data_path: $.data_dir + "/train.txt",
    validation_data_path: $.data_dir + "/valid.txt",
    vocabulary: { type: "bitmaps_wordpiece", model_name: encoder },
    model: {
      type: "bitmaps_distilled_masked_lm",
      teacher: $.teacher,
      loss_weights: loss_weights,
      text_field_embedder: {
        token_embedders: {
          // compile_layers: the student's layers train compiled (1.64x the first measured step
          // on Ice Lake, README "Training throughput"); about a minute of compilation at the
          // start and after --recover, which a recipe's thousands of steps repay
          tokens: $.tables_as(tables, { type: "bitmaps_binary_bert", model_name: encoder, binarize: true, compile_layers: true } + knobs),
        },
      },
      // Latent weights start from init_from (a weights file or an archive; AllenNLP's
      // `pretrained`, naming a missing file: bitmaps_allennlp/training/start_from.py); quantizer
      // parameters (learned scales, BiT's alpha/beta) are new and initialise from data.
      initializer: {
        regexes: [[".*", { type: "bitmaps_start_from", weights_file_path: init_from }]],
        prevent_regexes: ["_quantizer\\."],
      },
    } + distillation,
    data_loader: {
      batch_size: batch_size,
      shuffle: true,
      max_instances_in_memory: batch_size * 100,
      batches_per_epoch: steps_per_epoch,
    },
    validation_data_loader: { batch_size: 64, shuffle: false },
    trainer: {
      num_epochs: num_epochs,
      validation_metric: "-perplexity",
      grad_norm: 1.0,
      optimizer: { type: "bitmaps_adamw", lr: lr, weight_decay: 0.0 },
      learning_rate_scheduler: { type: "linear_with_warmup", warmup_steps: std.floor(steps_per_epoch * num_epochs / 10) },
      checkpointer: { keep_most_recent_by_count: 1 },
      // freed tensors stay in the heap for the next step's: no page faults on the largest ones
      // (bitmaps_allennlp/training/freed_memory.py)
      callbacks: [{ type: "bitmaps_keep_freed_memory" }],
    },
  },
}

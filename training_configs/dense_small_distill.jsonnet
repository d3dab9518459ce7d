// The dense baseline a binarized student must beat ("just use a smaller float model"): the
// teacher's first 2 of 6 layers, full precision, distilled from the same teacher with BiT stage 1's
// losses and budget (soft cross-entropy + hidden states under the uniform layer map, 200 steps of
// 16 x 128). Its encoder is 14.2 MB in fp32 and about 3.5 MB in int8, against 1.3 MB of packed
// 1-bit linears in a 6-layer student (README, "When does binarization win?").
local lib = import "lib/distillation.libsonnet";

lib.recipe(
  knobs={ binarize: false, num_hidden_layers: 2 },
  loss_weights={ soft_ce: 1.0, hidden: 1.0 },
  init_from="runs/teacher/best.th",
  tables="fp32",  // full precision throughout: the float model a binarized one must beat
)

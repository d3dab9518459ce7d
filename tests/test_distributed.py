"""AllenNLP's own distributed trainer (torch DDP, gloo on CPU): the demo config and a distillation
recipe train on 2 worker processes, and their archives evaluate."""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from allennlp.common import Params
from allennlp.commands.train import train_model
from allennlp.models.archival import load_archive
from allennlp.training.util import evaluate
from allennlp.data import DataLoader

from bitmaps_allennlp.modules.activation_quantizer import ElasticBinarizer
from tests.test_training_configs import CONFIG_DIR, _redirect_pretrained_initializers, _tiny


# the demo and one distillation recipe (a teacher, data-initialised quantizers, a pretrained
# initializer) run in `make test`; the other configs, ~10 s each, with `make test-all`
FAST = ("demo_binary_bert_mlm", "bit_stage2_w1a1")
CONFIGS = sorted(CONFIG_DIR.glob("*.jsonnet"), key=lambda p: (p.stem not in FAST, p.stem))


@pytest.mark.parametrize(
    "config_path",
    [pytest.param(p, id=p.stem, marks=() if p.stem in FAST else pytest.mark.slow) for p in CONFIGS],
)
def test_config_trains_on_two_cpu_workers_and_evaluates(
    config_path, tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path, tmp_path
):
    config = Params.from_file(str(config_path)).as_dict(quiet=True)
    config = _tiny(config, tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path)
    _redirect_pretrained_initializers(config, tmp_path)
    config["trainer"].pop("cuda_device")
    config["distributed"] = {"cuda_devices": [-1, -1]}
    run = tmp_path / "run"
    train_model(Params(config), serialization_dir=str(run), include_package=["bitmaps_allennlp"])
    archive = load_archive(str(run / "model.tar.gz"))
    # the archive holds the student only: no teacher tensors were trained or saved
    assert not any("teacher" in key for key in archive.model.state_dict())
    loader = DataLoader.from_params(
        params=Params({"batch_size": 4}),
        reader=archive.validation_dataset_reader,
        data_path=str(valid_corpus_path),
    )
    loader.index_with(archive.model.vocab)
    metrics = evaluate(archive.model, loader)
    assert 1.0 < metrics["perplexity"] < float("inf")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _elastic_worker(rank: int, port: int, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        binarizer = ElasticBinarizer(signed=True)
        # each worker's first batch differs: mean |x| is 1 on worker 0 and 3 on worker 1
        binarizer(torch.full((4, 8), 1.0 + 2 * rank))
        results[rank] = float(binarizer.alpha.detach())
    finally:
        dist.destroy_process_group()


def test_data_initialized_quantizer_parameters_agree_across_workers():
    """BiT's alpha starts from the first batch each worker sees; without agreeing on it the
    workers' models would differ from the first step on (DDP only averages gradients)."""
    results = mp.Manager().dict()
    mp.spawn(_elastic_worker, args=(_free_port(), results), nprocs=2)
    assert results[0] == results[1] == pytest.approx(2.0)


def _teacher_worker(rank: int, port: int, model_params: dict, vocab_dir: str, batch, results) -> None:
    from torch.nn.parallel import DistributedDataParallel

    import bitmaps_allennlp  # noqa: F401  (registers the model in the spawned process)
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = Model.from_params(vocab=Vocabulary.from_files(vocab_dir), params=Params(model_params))
        teacher = model.teacher
        before = {k: v.clone() for k, v in teacher.state_dict().items()}
        wrapped = DistributedDataParallel(model)
        teacher_ids = {id(p) for p in teacher.parameters()}
        results[f"in_ddp_{rank}"] = sum(id(p) in teacher_ids for p in wrapped.parameters())
        optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.1)
        wrapped(**batch)["loss"].backward()
        optimizer.step()
        results[f"teacher_changed_{rank}"] = any(not torch.equal(before[k], v) for k, v in teacher.state_dict().items())
        results[f"teacher_frozen_{rank}"] = not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    finally:
        dist.destroy_process_group()


def test_the_teacher_stays_frozen_and_out_of_ddp(tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path, tmp_path):
    from allennlp.data import Batch, Vocabulary

    from bitmaps_allennlp.dataset_readers import MaskedLmCorpusReader
    from tests.model_configs import tiny_masked_lm_config

    config = tiny_masked_lm_config(tiny_bert_dir, corpus_path, valid_corpus_path)
    config["model"].update(type="bitmaps_distilled_masked_lm", teacher=str(tiny_bert_with_head_dir),
                           loss_weights={"mlm": 1.0, "soft_ce": 1.0, "hidden": 1.0})
    vocab = Vocabulary.from_params(Params(config["vocabulary"]))
    vocab.save_to_files(str(tmp_path / "vocab"))
    reader = MaskedLmCorpusReader(model_name=str(tiny_bert_dir), max_length=16, deterministic_masking=True)
    instances = list(reader.read(str(corpus_path)))[:4]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(vocab)
    results = mp.Manager().dict()
    mp.spawn(_teacher_worker, args=(_free_port(), config["model"], str(tmp_path / "vocab"), batch.as_tensor_dict(), results), nprocs=2)
    for rank in range(2):
        assert results[f"in_ddp_{rank}"] == 0
        assert results[f"teacher_frozen_{rank}"] and not results[f"teacher_changed_{rank}"]

import numpy as np
import pytest

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader


def _reader(tiny_bert_dir, **kwargs):
    return MaskedLmCorpusReader(model_name=str(tiny_bert_dir), max_length=16, **kwargs)


def _arrays(instance):
    ids = [t.text_id for t in instance["tokens"].tokens]
    return (
        np.array(ids),
        instance["masked_positions"].tensor.numpy(),
        instance["target_ids"].tensor.numpy(),
    )


def test_blocks_pack_the_whole_file_with_cls_and_sep(tiny_bert_dir, corpus_path):
    reader = _reader(tiny_bert_dir)
    tokenizer = reader._tokenizer
    instances = list(reader.read(corpus_path))
    lines = [line.strip().replace("<unk>", "[UNK]") for line in open(corpus_path)]
    expected = tokenizer(" ".join(l for l in lines if l), add_special_tokens=False)["input_ids"]
    packed = []
    for instance in instances:
        _, _, targets = _arrays(instance)
        assert targets[0] == tokenizer.cls_token_id and targets[-1] == tokenizer.sep_token_id
        assert len(targets) <= 16
        packed.extend(targets[1:-1].tolist())
    assert packed == expected
    assert all(len(_arrays(i)[2]) == 16 for i in instances[:-1])
    # what the blocks are cut from, also on its own (scripts/table_rounding.py counts it)
    assert list(reader.wordpiece_ids(str(corpus_path))) == expected


def test_unk_becomes_the_tokenizer_unknown_token_and_is_never_a_target(tiny_bert_dir, corpus_path):
    reader = _reader(tiny_bert_dir)
    unk = reader._tokenizer.unk_token_id
    instances = list(reader.read(corpus_path))
    targets = np.concatenate([_arrays(i)[2] for i in instances])
    assert (targets == unk).sum() == open(corpus_path).read().count("<unk>")
    pieces = reader._tokenizer.convert_ids_to_tokens(targets.tolist())
    assert "<" not in pieces and "##k" not in pieces
    for instance in instances:
        _, masked, targets = _arrays(instance)
        assert not (targets[masked] == unk).any()


def test_masking_rate_and_80_10_10_rule(tiny_bert_dir, corpus_path):
    reader = _reader(tiny_bert_dir, mask_probability=0.5)
    tokenizer = reader._tokenizer
    kinds = {"mask": 0, "random": 0, "kept": 0}
    for _ in range(20):
        for instance in reader.read(corpus_path):
            ids, masked, targets = _arrays(instance)
            maskable = (targets != tokenizer.unk_token_id).sum() - 2
            assert masked.sum() == max(1, round(0.5 * maskable))
            assert not masked[0] and not masked[-1]
            assert (ids[~masked] == targets[~masked]).all()
            chosen_ids, chosen_targets = ids[masked], targets[masked]
            kinds["mask"] += (chosen_ids == tokenizer.mask_token_id).sum()
            kinds["kept"] += (chosen_ids == chosen_targets).sum()
            kinds["random"] += ((chosen_ids != tokenizer.mask_token_id) & (chosen_ids != chosen_targets)).sum()
    total = sum(kinds.values())
    assert 0.75 < kinds["mask"] / total < 0.85
    # random draws can hit the true token, so "kept" is a little over 10% and "random" under
    assert 0.06 < kinds["random"] / total < 0.13
    assert 0.07 < kinds["kept"] / total < 0.15


def test_deterministic_masks_repeat_and_random_masks_do_not(tiny_bert_dir, corpus_path):
    def masks(reader):
        return [_arrays(i)[1].tolist() for i in reader.read(corpus_path)]

    fixed = _reader(tiny_bert_dir, deterministic_masking=True)
    assert masks(fixed) == masks(fixed)
    assert masks(fixed) == masks(_reader(tiny_bert_dir, deterministic_masking=True))
    assert masks(fixed) != masks(_reader(tiny_bert_dir, deterministic_masking=True, seed=14))
    random_reader = _reader(tiny_bert_dir)
    assert masks(random_reader) != masks(random_reader)


def test_shards_partition_the_blocks_and_keep_their_masks(tiny_bert_dir, corpus_path, monkeypatch):
    import torch.distributed as dist

    whole = [_arrays(i) for i in _reader(tiny_bert_dir, deterministic_masking=True).read(corpus_path)]
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        reader = _reader(tiny_bert_dir, deterministic_masking=True)
        shards.append([_arrays(i) for i in reader.read(corpus_path)])
    merged = [block for pair in zip(*shards) for block in pair]
    assert len(shards[0]) + len(shards[1]) == len(whole)
    for got, expected in zip(merged, whole):
        for a, b in zip(got, expected):
            assert np.array_equal(a, b)


def test_prediction_instance_masks_the_mask_tokens(tiny_bert_dir):
    reader = _reader(tiny_bert_dir)
    instance = reader.text_to_instance("the capital of france is [MASK] .")
    pieces = [t.text for t in instance["tokens"].tokens]
    masked = instance["masked_positions"].tensor.tolist()
    assert pieces == ["[CLS]", "the", "capital", "of", "france", "is", "[MASK]", ".", "[SEP]"]
    assert masked == [p == "[MASK]" for p in pieces]
    assert "target_ids" not in instance


def test_bad_input_is_named(tiny_bert_dir, tmp_path):
    reader = _reader(tiny_bert_dir)
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        reader.text_to_instance("the capital of france is paris .")
    with pytest.raises(ValueError, match="max_length=16"):
        reader.text_to_instance("the [MASK] " + "river " * 20)
    with pytest.raises((ConfigurationError, FileNotFoundError), match="missing.txt"):
        list(reader.read(tmp_path / "missing.txt"))
    with pytest.raises(ConfigurationError, match="replace_with_mask"):
        _reader(tiny_bert_dir, replace_with_mask=0.95, replace_with_random=0.1)


def test_truncate_cuts_a_long_sentence_to_max_length_and_keeps_its_masks(tiny_bert_dir):
    reader = _reader(tiny_bert_dir, truncate=True)
    sentence = "the [MASK] " + "river " * 20
    full = reader._tokenizer(sentence)["input_ids"]
    instance = reader.text_to_instance(sentence, target_ids=full)
    pieces = [t.text for t in instance["tokens"].tokens]
    assert len(pieces) == 16 and pieces[:3] == ["[CLS]", "the", "[MASK]"] and pieces[-1] == "[SEP]"
    assert instance["masked_positions"].tensor.tolist() == [p == "[MASK]" for p in pieces]
    # the targets are cut the same way: the first wordpieces, then [SEP]'s
    assert instance["target_ids"].tensor.tolist() == full[:15] + full[-1:]
    # a [MASK] past the cut is refused rather than left out of the predictions
    with pytest.raises(ValueError, match="past max_length=16 wordpieces, which truncate would cut"):
        reader.text_to_instance("the [MASK] " + "river " * 20 + "[MASK] .")
    assert len(reader.text_to_instance("the capital of france is [MASK] .")["tokens"]) == 9


def test_multiprocess_workers_read_each_block_once(tiny_bert_dir, corpus_path):
    from allennlp.data import Vocabulary
    from allennlp.data.data_loaders import MultiProcessDataLoader

    reader = _reader(tiny_bert_dir, deterministic_masking=True)
    whole = sorted(tuple(_arrays(i)[2].tolist()) for i in reader.read(corpus_path))
    loader = MultiProcessDataLoader(reader, str(corpus_path), batch_size=2, num_workers=2)
    loader.index_with(Vocabulary.from_pretrained_transformer(str(tiny_bert_dir), namespace="tags"))
    seen = sorted(tuple(_arrays(i)[2].tolist()) for i in loader.iter_instances())
    assert seen == whole


@pytest.mark.parametrize("content", [b"", b"\n\n   \n\t\n"], ids=["empty", "blank-lines"])
def test_a_file_without_text_is_refused_naming_it(tiny_bert_dir, tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=f"{path} holds no text"):
        list(_reader(tiny_bert_dir).read(str(path)))


def test_a_file_that_is_not_utf8_is_refused_naming_it_and_the_offset(tiny_bert_dir, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("the cat\nthe caf\xe9 is open\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match=f"{path} is not UTF-8 text: byte offset 15 \\(line 2\\)"):
        list(_reader(tiny_bert_dir).read(str(path)))


def test_a_byte_order_mark_is_dropped(tiny_bert_dir, tmp_path):
    plain, marked = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_text("the capital of france is paris .\n", encoding="utf-8")
    marked.write_text("the capital of france is paris .\n", encoding="utf-8-sig")
    reader = _reader(tiny_bert_dir, deterministic_masking=True)
    assert [_arrays(i)[2].tolist() for i in reader.read(str(plain))] == [
        _arrays(i)[2].tolist() for i in reader.read(str(marked))
    ]


def test_max_length_longer_than_the_positions_is_refused_when_built(tiny_bert_dir):
    # the tiny BERT has 64 positions
    with pytest.raises(ConfigurationError, match="max_length = 65 is longer than the encoder's max_position_embeddings = 64"):
        MaskedLmCorpusReader(model_name=str(tiny_bert_dir), max_length=65)
    MaskedLmCorpusReader(model_name=str(tiny_bert_dir), max_length=64)


def test_a_tokenizer_larger_than_the_encoder_vocabulary_is_refused(tiny_bert_dir, tmp_path):
    import json
    import shutil

    small = tmp_path / "small_vocab_bert"
    shutil.copytree(tiny_bert_dir, small)
    config = json.loads((small / "config.json").read_text())
    config["vocab_size"] = 10
    (small / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigurationError, match="wordpieces but the encoder's vocab_size is 10"):
        MaskedLmCorpusReader(model_name=str(small), max_length=16)

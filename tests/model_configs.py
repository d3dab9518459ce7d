"""Configs for the tiny test models, written to a temporary directory at test time."""
import json
from pathlib import Path
from typing import Any, Dict


def tiny_masked_lm_config(
    tiny_bert_dir: Path, train_path: Path, valid_path: Path, binarize: bool = True, **embedder: Any
) -> Dict[str, Any]:
    reader = {
        "type": "bitmaps_masked_lm_corpus",
        "model_name": str(tiny_bert_dir),
        "max_length": 16,
        "deterministic_masking": True,
    }
    return {
        "dataset_reader": reader,
        "train_data_path": str(train_path),
        "validation_data_path": str(valid_path),
        "vocabulary": {
            "type": "bitmaps_wordpiece",
            "model_name": str(tiny_bert_dir),
        },
        "model": {
            "type": "bitmaps_masked_lm",
            "text_field_embedder": {
                "token_embedders": {
                    "tokens": dict(
                        type="bitmaps_binary_bert",
                        model_name=str(tiny_bert_dir),
                        binarize=binarize,
                        **embedder,
                    )
                }
            },
        },
        "data_loader": {"batch_size": 4, "shuffle": True},
        "trainer": {
            "num_epochs": 2,
            "optimizer": {"type": "adam", "lr": 1e-3},
            "validation_metric": "-perplexity",
            "cuda_device": -1,
        },
    }


def write_config(config: Dict[str, Any], directory: Path, name: str = "config.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(config, indent=2))
    return path

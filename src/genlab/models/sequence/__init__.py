"""The sequence family: RNN, LSTM, GRU and a small causal Transformer over token sequences
(text via character or BPE tokenisers, music via event tokens, molecules via atom-level
SMILES or SELFIES tokens), with exact likelihoods,
temperature / top-k / nucleus sampling, beam search and fast cached generation."""
from .config import RecurrentConfig, SequenceConfig, TransformerConfig
from .lm import SequenceLM
from .recurrent import GRU, LSTM, RNN, RecurrentLM
from ...data.tokenizers import BPETokenizer, CharTokenizer, SelfiesTokenizer, SmilesTokenizer
from .transformer import Transformer

__all__ = ["SequenceConfig", "RecurrentConfig", "TransformerConfig", "SequenceLM", "RecurrentLM",
           "RNN", "LSTM", "GRU", "Transformer", "CharTokenizer", "BPETokenizer",
           "SmilesTokenizer", "SelfiesTokenizer"]

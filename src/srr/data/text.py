"""Text for causal language models: a byte-level tokenizer and the ``--data text:PATH`` source.

The tokenizer maps a string to its UTF-8 bytes, so the vocabulary is the 256 byte values, nothing is downloaded and
every file is valid input (a file that is not UTF-8 is read as the bytes it holds). Because one token is one byte,
a loss in nats per token converts to bits per byte by ``bpb = nats / ln 2``.

``text:PATH`` reads a plain file and splits it at a fixed point: the first 90 % of the bytes train, the last 10 %
validate (no shuffling, so no validation text leaks into training windows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..checks import check_int, check_memory
from ..errors import DataError, DataFileNotFoundError
from ..io import check_regular_file
from .sources import load_data, register_source

__all__ = ["ByteTokenizer", "TextData", "load_text", "read_text_file", "VAL_FRACTION", "bits_per_byte"]

VAL_FRACTION = 0.1


def bits_per_byte(nats_per_token: float, bytes_per_token: float = 1.0) -> float:
    """``nats / (ln 2 · bytes per token)``; with the byte tokenizer, bytes per token is 1."""
    return nats_per_token / (math.log(2.0) * bytes_per_token)


class ByteTokenizer:
    """UTF-8 bytes as tokens: ``vocab_size = 256``; ``decode`` replaces invalid sequences with U+FFFD."""

    name = "bytes"
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise DataError(f"the tokenizer encodes str, got {type(text).__name__}")
        try:
            return list(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # e.g. undecodable bytes of a command line (surrogate escapes)
            raise DataError(f"the text is not valid UTF-8 (at character {exc.start}): {text[:40]!r}") from None

    def decode(self, ids) -> str:
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        ids = list(ids)
        bad = [i for i in ids if not isinstance(i, int) or not 0 <= i < 256]
        if bad:
            raise DataError(f"byte tokens must be integers in [0, 256), got {bad[:5]}")
        return bytes(ids).decode("utf-8", errors="replace")


@dataclass
class TextData:
    """A tokenised text split in two: ``train`` and ``val`` are 1-D int64 token tensors."""

    name: str
    spec: str
    train: Tensor
    val: Tensor
    vocab_size: int = ByteTokenizer.vocab_size
    tokenizer: str = ByteTokenizer.name

    def __post_init__(self):
        self.vocab_size = check_int(self.vocab_size, f"{self.spec}: vocab_size", low=1, error=DataError)
        for split, t in (("train", self.train), ("validation", self.val)):
            if not torch.is_tensor(t) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise DataError(f"{self.spec}: the {split} tokens must be an integer tensor, got "
                                f"{getattr(t, 'dtype', type(t).__name__)}")
            if t.dim() != 1:
                raise DataError(f"{self.spec}: the {split} tokens must be 1-D, got shape {tuple(t.shape)}")
            if len(t) < 2:
                raise DataError(f"{self.spec}: the {split} split holds {len(t)} token(s); at least 2 are needed "
                                "(one input and one target); use a longer file")
            low, high = int(t.min()), int(t.max())
            if low < 0 or high >= self.vocab_size:
                raise DataError(f"{self.spec}: {split} token {low if low < 0 else high} is outside the vocabulary "
                                f"[0, {self.vocab_size})")

    def model_overrides(self) -> dict:
        """The ``create_model`` overrides that make a language model fit this data."""
        return {"vocab_size": self.vocab_size}


def read_text_file(path: str | Path) -> bytes:
    """The bytes of a plain text file, with clear errors for a missing, unreadable or empty file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFileNotFoundError(f"text file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; text:PATH needs a plain text file")
    check_regular_file(path)
    try:
        check_memory(9 * path.stat().st_size, f"{path}: reading it as tokens")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw:
        raise DataError(f"{path} is empty")
    return raw


def load_text(spec: str) -> TextData:
    """Load a text spec (``text:PATH``) as :class:`TextData`."""
    return load_data(spec, task="lm")


@register_source("text", "a plain text file as UTF-8 bytes (256 tokens); last 10 % validates", path=True,
                 task="lm")
def _load(spec) -> TextData:
    arg = spec.path
    raw = read_text_file(arg)
    tokens = torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
    n_val = max(2, int(round(len(tokens) * VAL_FRACTION)))
    if len(tokens) - n_val < 2:
        raise DataError(f"{arg} holds {len(tokens)} byte(s): too short to split into training and validation text "
                        "(needs at least 4)")
    return TextData("text", spec.text, tokens[:-n_val].clone(), tokens[-n_val:].clone())

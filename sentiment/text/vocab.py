"""Word vocabulary: most frequent tokens plus ``<pad>`` and ``<unk>``; JSON round-trip."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PAD = "<pad>"
UNK = "<unk>"
EOS = "<eos>"  # ends each review in a language model's stream


class Vocab:
    """Token <-> id mapping. Id 0 is ``<pad>``, id 1 is ``<unk>`` (when present)."""

    def __init__(self, tokens: Sequence[str]):
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.itos = list(tokens)
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        self.pad_index = self.stoi.get(PAD)
        self.unk_index = self.stoi.get(UNK)
        self.counts: dict[str, int] = {}
        self.total_count = 0

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        max_size: int | None = 10_000,
        min_freq: int = 1,
        specials: Sequence[str] = (PAD, UNK),
    ) -> Vocab:
        """The ``max_size`` most frequent tokens with count >= ``min_freq``, after ``specials``.

        Ties in frequency are broken alphabetically, so the order is deterministic.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for special in specials:
            counts.pop(special, None)
        total_count = sum(counts.values())
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_freq), key=lambda kv: (-kv[1], kv[0])
        )
        if max_size is not None:
            ranked = ranked[:max_size]
        vocab = cls([*specials, *(token for token, _ in ranked)])
        vocab.counts = dict(ranked)
        vocab.total_count = total_count
        return vocab

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to ``<unk>`` (a KeyError if there is none)."""
        if self.unk_index is None:
            return [self.stoi[token] for token in tokens]
        get, unk = self.stoi.get, self.unk_index
        return [get(token, unk) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"itos": self.itos}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls(json.loads(Path(path).read_text(encoding="utf-8"))["itos"])

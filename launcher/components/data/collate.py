"""ESPnet's CommonCollateFn without ESPnet: `(utt_ids, {name: padded tensor})` batches.

    dataloader:
      collate_fn: {_target_: launcher.components.data.collate.CommonCollateFn,
                   int_pad_value: -1}

Items are `(utt_id, {name: array})` (an organizer's datasets give them so when
this collate function is used) or plain `{name: array}` (then the id is the
item's position in the batch). Every array is padded along its first axis and
`<name>_lengths` added, unless the name is in `not_sequence`; integer arrays
are padded with `int_pad_value`, the rest with `float_pad_value`. The same
defaults and output as `espnet2.train.collate_fn.CommonCollateFn`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

ESPNET_COLLATE = "espnet2.train.collate_fn.CommonCollateFn"


class CommonCollateFn:
    def __init__(self, float_pad_value: float = 0.0, int_pad_value: int = -32768,
                 not_sequence: Collection[str] = ()) -> None:
        self.float_pad_value = float_pad_value
        self.int_pad_value = int_pad_value
        self.not_sequence = set(not_sequence)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(float_pad_value={self.float_pad_value}, "
                f"int_pad_value={self.int_pad_value})")

    def __call__(self, items: Sequence[Any]) -> tuple[list[str], dict[str, Any]]:
        import torch
        from torch.nn.utils.rnn import pad_sequence

        pairs = [item if _is_pair(item) else (str(i), item) for i, item in enumerate(items)]
        uids = [uid for uid, _ in pairs]
        samples = [sample for _, sample in pairs]
        batch: dict[str, Any] = {}
        for key in samples[0]:
            if key.endswith("_lengths"):
                raise ValueError(f"an item's key '{key}' ends with _lengths: the collate "
                                 "function adds those itself")
            tensors = [torch.as_tensor(sample[key]) for sample in samples]
            if key in self.not_sequence or tensors[0].dim() == 0:
                batch[key] = torch.stack(tensors)
                continue
            integer = not (tensors[0].is_floating_point() or tensors[0].is_complex())
            pad = self.int_pad_value if integer else self.float_pad_value
            batch[key] = pad_sequence(tensors, batch_first=True, padding_value=pad)
            batch[f"{key}_lengths"] = torch.tensor([len(t) for t in tensors],
                                                   dtype=torch.long)
        return uids, batch


def _is_pair(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping)


def is_common_collate(collate_fn: Any) -> bool:
    """Whether `collate_fn` is ESPnet's CommonCollateFn or this one: an organizer's
    datasets then give `(utt_id, item)` pairs, as ESPnet3's do."""
    cls = type(collate_fn)
    return isinstance(collate_fn, CommonCollateFn) or \
        f"{cls.__module__}.{cls.__qualname__}" == ESPNET_COLLATE

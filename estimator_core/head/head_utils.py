"""The head a premade classifier uses for its ``n_classes``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from estimator_core.head.base_head import Head
from estimator_core.head.binary_class_head import BinaryClassHead
from estimator_core.head.multi_class_head import MultiClassHead


def binary_or_multi_class_head(
    n_classes: int,
    weight_column: Any,
    label_vocabulary: Sequence[str] | None,
    loss_reduction: str,
) -> Head:
    """A :class:`BinaryClassHead` for ``n_classes == 2``, else a :class:`MultiClassHead`."""
    if n_classes == 2:
        return BinaryClassHead(
            weight_column=weight_column,
            label_vocabulary=label_vocabulary,
            loss_reduction=loss_reduction,
        )
    return MultiClassHead(
        n_classes,
        weight_column=weight_column,
        label_vocabulary=label_vocabulary,
        loss_reduction=loss_reduction,
    )

"""An in-memory image data set: uint8 tensors normalised per item, no PIL, no file access."""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from filmqnn.data.augment import augment_batch


class InMemoryImageDataset(Dataset[tuple[Tensor, int]]):
    """Yields (float [C, H, W] normalised with ``mean``/``std``, int label) from uint8 tensors."""

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
    ) -> None:
        self.images, self.labels = images, labels
        self.mean, self.std, self.augment = tuple(mean), tuple(std), augment
        self._scale = 1.0 / (255.0 * torch.tensor(std).view(-1, 1, 1))
        self._shift = torch.tensor(mean).view(-1, 1, 1) / torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        x = self.images[index].float() * self._scale - self._shift
        if self.augment:
            x = augment_batch(x.unsqueeze(0)).squeeze(0)
        return x, int(self.labels[index])

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised images and labels of ``indices`` in one vectorised step, unaugmented."""
        return self.images[indices].float() * self._scale - self._shift, self.labels[indices]

    def subset(self, indices: Tensor) -> "InMemoryImageDataset":
        """A copy holding only ``indices`` (still in memory, same normalisation)."""
        return InMemoryImageDataset(
            self.images[indices], self.labels[indices], self.mean, self.std, self.augment
        )

"""ImageNet-style folders (``root/train/<class>/*``, ``root/val/<class>/*``) via torchvision."""

from pathlib import Path

from torchvision import transforms as T
from torchvision.datasets import ImageFolder

from filmqnn.data.errors import DatasetError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SUBDIR = {"train": "train", "test": "val"}


def imagefolder_transform(image_size: int, augment: bool) -> T.Compose:
    """Random-resized-crop + flip when ``augment``, else resize to 256/224 x size + center crop."""
    normalize = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if augment:
        return T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *normalize])
    resize = round(image_size * 256 / 224)
    return T.Compose([T.Resize(resize), T.CenterCrop(image_size), *normalize])


def load_imagefolder(
    root: str | None, split: str, image_size: int = 224, augment: bool = False
) -> ImageFolder:
    """The ``train`` (split "train") or ``val`` (split "test") folder of an ImageNet-style tree."""
    layout = "root/train/<class>/*.JPEG and root/val/<class>/*.JPEG"
    if root is None:
        raise DatasetError(f"imagenet needs --data-root pointing to a folder laid out as {layout}")
    folder = Path(root) / _SUBDIR[split]
    if not folder.is_dir():
        raise DatasetError(
            f"{folder} not found: the imagenet data set must be laid out as {layout}"
        )
    try:
        return ImageFolder(str(folder), transform=imagefolder_transform(image_size, augment))
    except FileNotFoundError as err:
        raise DatasetError(f"{folder}: {err} (expected {layout})") from err

"""ImageNet-style folders (``root/train/<class>/*``, ``root/val/<class>/*``) via torchvision.

Train: ``RandomResizedCrop(size)`` + horizontal flip; val: resize to ``size * 256 / 224`` and
center-crop ``size`` (the standard ImageNet transforms); both normalise with ImageNet's mean/std.
"""

from pathlib import Path

from torchvision import transforms as T
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from filmqnn.data.errors import DatasetError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SUBDIR = {"train": "train", "test": "val"}
LAYOUT = "root/train/<class>/*.JPEG and root/val/<class>/*.JPEG"


def imagefolder_transform(image_size: int, augment: bool) -> T.Compose:
    """Random-resized-crop + flip when ``augment``, else resize to 256/224 x size + center crop."""
    normalize = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if augment:
        return T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *normalize])
    resize = round(image_size * 256 / 224)
    return T.Compose([T.Resize(resize), T.CenterCrop(image_size), *normalize])


def _class_dirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def check_layout(root: str | Path, split: str) -> Path:
    """The split's folder, after checking it holds class folders matching ``train``'s.

    Catches the usual mistakes with a message that names the fix: a missing folder, images
    lying directly in ``val/`` (ImageNet's validation archive unpacks flat), and ``val``
    classes that differ from ``train``'s (labels would silently disagree).
    """
    folder = Path(root) / _SUBDIR[split]
    if not folder.is_dir():
        raise DatasetError(
            f"{folder} not found: the imagenet data set must be laid out as {LAYOUT}"
        )
    classes = _class_dirs(folder)
    if not classes:
        loose = [p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS]
        hint = (
            f" ({len(loose)} images lie directly in it: sort them into one folder per class, "
            "named as in train/, e.g. with the ILSVRC2012 validation labels / valprep.sh)"
            if loose
            else ""
        )
        raise DatasetError(f"{folder} has no class folders{hint}; expected {LAYOUT}")
    train = Path(root) / "train"
    if split == "test" and train.is_dir():
        train_classes = _class_dirs(train)
        if train_classes and train_classes != classes:
            missing = sorted(set(train_classes) - set(classes))
            extra = sorted(set(classes) - set(train_classes))
            raise DatasetError(
                f"{folder} and {train} have different class folders (missing in val: "
                f"{missing[:5]}{'...' if len(missing) > 5 else ''}, not in train: "
                f"{extra[:5]}{'...' if len(extra) > 5 else ''}); labels are class-folder "
                "indices, so both splits need the same class folders"
            )
    return folder


def load_imagefolder(
    root: str | None, split: str, image_size: int = 224, augment: bool = False
) -> ImageFolder:
    """The ``train`` (split "train") or ``val`` (split "test") folder of an ImageNet-style tree."""
    if root is None:
        raise DatasetError(f"imagenet needs --data-root pointing to a folder laid out as {LAYOUT}")
    folder = check_layout(root, split)
    try:
        return ImageFolder(str(folder), transform=imagefolder_transform(image_size, augment))
    except FileNotFoundError as err:
        raise DatasetError(f"{folder}: {err} (expected {LAYOUT})") from err

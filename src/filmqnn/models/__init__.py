"""filmqnn.models: torchvision CNNs at ImageNet shape, small-input variants, a tiny test CNN."""

from filmqnn.models.errors import ModelError
from filmqnn.models.names import MODEL_NAMES, default_input_size, min_input_size
from filmqnn.models.registry import build_model, load_state_dict_file

__all__ = [
    "MODEL_NAMES",
    "ModelError",
    "build_model",
    "default_input_size",
    "load_state_dict_file",
    "min_input_size",
]

"""Integer reference stage (DESIGN.md §1): the golden executor of an artifact."""

from filmqnn.ref.evaluate import compare_logits, evaluate_artifact
from filmqnn.ref.executor import ReferenceExecutor

__all__ = ["ReferenceExecutor", "compare_logits", "evaluate_artifact"]

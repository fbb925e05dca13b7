"""ONNX export of the integer artifact (DESIGN.md §8 "interop"): an integer-exact graph that
ONNX Runtime runs bit for bit like the reference executor, and a QDQ float view."""

from filmqnn.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "OnnxExportError": "graph",
    "build_int_model": "graph",
    "build_qdq_model": "qdq",
    "export_onnx": "export",
    "read_artifact": "export",
    "OnnxRuntimeExecutor": "runtime",
    "make_session": "runtime",
})

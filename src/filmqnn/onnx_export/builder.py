"""A small helper that collects ONNX nodes and initializers under unique names."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: The ONNX opset both graphs are written for (the oldest one with every op they use,
#: so that older runtimes and tools open them too) and the matching IR version.
OPSET = 17
IR_VERSION = 8

#: ONNX element type of each numpy dtype the graphs use.
ONNX_TYPES = {
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int16): TensorProto.INT16,
    np.dtype(np.uint16): TensorProto.UINT16,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.uint64): TensorProto.UINT64,
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float64): TensorProto.DOUBLE,
}


def int_dtype(bits: int, signed: bool) -> np.dtype:
    """The narrowest numpy integer dtype that holds a `bits`-bit (un)signed tensor."""
    for width in (8, 16, 32):
        if bits <= width:
            return np.dtype(f"{'int' if signed else 'uint'}{width}")
    raise ValueError(f"no ONNX integer tensor type for {bits}-bit values")


class GraphBuilder:
    """Nodes and initializers of one ONNX graph; every name it hands out is unique."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._held: set[str] = set()

    def name(self, base: str) -> str:
        """`base`, or `base_2`, `base_3`, ... if it is taken."""
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def reserve(self, name: str, hold: bool = False) -> str:
        """Claim an exact name (a graph input or output); fails if it is taken. A `hold`
        keeps it for the node that later writes it (`op(..., out=name)`)."""
        if name in self._names:
            raise ValueError(f"ONNX name {name!r} is used twice")
        self._names.add(name)
        if hold:
            self._held.add(name)
        return name

    def const(self, base: str, value: np.ndarray | int | float, dtype: Any = None,
              doc: str = "") -> str:
        """An initializer holding `value` (as `dtype` when given); returns its name."""
        a = np.asarray(value, dtype=dtype)
        if a.dtype not in ONNX_TYPES:
            raise TypeError(f"no ONNX type for {a.dtype}")
        t = numpy_helper.from_array(np.ascontiguousarray(a), self.name(base))
        if doc:
            t.doc_string = doc
        self.initializers.append(t)
        return t.name

    def op(self, op_type: str, inputs: list[str], base: str, out: str | None = None,
           **attrs: Any) -> str:
        """Append one node; returns its (single) output name (`out` exactly when given)."""
        if out in self._held:
            self._held.discard(out)
            output = out
        else:
            output = self.reserve(out) if out is not None else self.name(base)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=self.name(
            f"{base}/{op_type}"), **attrs))
        return output

    def cast(self, x: str, dtype: np.dtype | type, base: str, out: str | None = None) -> str:
        """Cast `x` to the ONNX type of numpy `dtype`."""
        return self.op("Cast", [x], base, out, to=ONNX_TYPES[np.dtype(dtype)])


def finish_model(b: GraphBuilder, name: str, inputs: list[onnx.ValueInfoProto],
                 outputs: list[onnx.ValueInfoProto], meta: dict[str, str],
                 doc: str) -> onnx.ModelProto:
    """The checked model of builder `b` with `meta` as metadata_props."""
    from filmqnn import __version__

    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="filmqnn", producer_version=__version__,
                              doc_string=doc)
    model.ir_version = IR_VERSION
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def value_info(name: str, dtype: np.dtype | type, dims: list[int | str]) -> onnx.ValueInfoProto:
    """A graph input / output declaration."""
    return helper.make_tensor_value_info(name, ONNX_TYPES[np.dtype(dtype)], dims)

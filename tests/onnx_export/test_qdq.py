"""The QDQ float view: standard QuantizeLinear / DequantizeLinear pairs around float ops,
per-channel weight scales, the 4-bit filters as int8 values in -7..7; ONNX Runtime runs it
and its logits stay close to the integer graph's (it cannot be exact)."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from filmqnn.onnx_export.qdq import build_qdq_model
from filmqnn.onnx_export.runtime import make_session
from filmqnn.ref.executor import ReferenceExecutor


@pytest.mark.parametrize("name", ("resnet18_small", "user_cnn"))
def test_qdq_view_is_close_to_the_integer_graph(graph_of, fmnist_images, name):
    g = graph_of(name)
    model = build_qdq_model(g, "sha")
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "BitShift" not in ops
    q = make_session(model, threads=1).run(None, {"input": fmnist_images.numpy()})[0]
    ref = ReferenceExecutor(g).logits(fmnist_images).numpy()
    assert q.shape == ref.shape
    assert np.abs(q - ref).mean() < 0.1 * ref.std()
    assert (q.argmax(1) == ref.argmax(1)).mean() >= 0.9


def test_weights_are_the_artifacts_integers_with_per_channel_scales(graph_of):
    g = graph_of("resnet18_small")
    model = build_qdq_model(g)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = {n.input[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    for node in g.nodes:
        if node.op not in ("conv", "fc"):
            continue
        w = inits[f"{node.name}.weight"]
        assert w.dtype == np.int8 and np.array_equal(w, node.params["weight"])
        low = node.params["bits"] == 4
        assert np.abs(w[low]).max(initial=0) <= 7
        scale = inits[dq[f"{node.name}.weight"].input[1]]
        assert scale.shape == (len(low),) and np.all(scale > 0)
        assert dq[f"{node.name}.weight"].attribute[0].i == 0  # axis 0: per output channel

"""The cycles the generated kernel counts in C-simulation agree with the hardware model layer
by layer (the model is what the DSE ranks designs by)."""

import hashlib
import json

import numpy as np
import pytest

from filmqnn.hls.compare import compare
from filmqnn.hls.csim import CsimEngine, CsimError
from filmqnn.hls.project import write_project
from filmqnn.hw.devices import load_board
from filmqnn.lower.artifact import save_artifact

#: Largest per-layer difference allowed between the C-sim count and the model.
LAYER_TOLERANCE = 0.08


@pytest.mark.parametrize("name,design", [("mobilenet_v2_small", "zcu102"),
                                         ("mobilenet_v2_small", "pynq-z2"),
                                         ("resnet50_small", "zcu102")])
def test_model_follows_the_kernel(graph_for, designs, name, design, tmp_path):
    """Depthwise inputs and skip operands gathered across tiles, index tables included."""
    graph = graph_for(name, design)
    board, d = designs[design]
    save_artifact(graph, tmp_path / "art")
    write_project(graph, d, load_board(board), tmp_path / "prj", tmp_path / "art")
    x = np.random.default_rng(0).integers(-128, 128, size=(1, *graph.tensors[graph.input].shape))
    r = compare(tmp_path / "prj", x)
    assert r["mismatches"] == 0
    worst = max(r["cycles"]["layers"], key=lambda ly: ly["error"] or 0)
    assert r["max_layer_error"] <= LAYER_TOLERANCE, worst
    # the first conv (the raw input unrolled on chip) within 5 %
    first = r["cycles"]["layers"][0]
    assert first["error"] <= 0.05, first
    total, model = r["cycles"]["total"], r["cycles"]["model_total"]
    assert abs(total - model) / model < 0.02


def test_store_banks_speed_the_on_chip_layers_in_both(graph_for, designs, tmp_path):
    """Two store banks per port read and write a tensor in the store at twice the ports'
    width: the kernel's counters and the model both run those layers faster, and the same;
    as the code is written too, whose store reads stream STORE_BANKS beats a trip."""
    graph = graph_for("mobilenet_v2_small", "pynq-z2")
    board, d = designs["pynq-z2"]
    save_artifact(graph, tmp_path / "art")
    x = np.random.default_rng(0).integers(-128, 128, size=(1, *graph.tensors[graph.input].shape))
    runs = {}
    for banks in (1, 2):
        write_project(graph, {**d, "store_banks": banks}, load_board(board),
                      tmp_path / f"prj{banks}", tmp_path / "art")
        runs[banks] = compare(tmp_path / f"prj{banks}", x)
        assert runs[banks]["mismatches"] == 0
        assert runs[banks]["max_layer_error"] <= LAYER_TOLERANCE
    one, two = (runs[b]["cycles"] for b in (1, 2))
    faster = [a["name"] for a, b in zip(one["layers"], two["layers"], strict=True)
              if b["csim"] < a["csim"] and b["model"] < a["model"]]
    assert faster and two["total"] < one["total"] and two["model_total"] < one["model_total"]
    assert two["as_written_total"] < one["as_written_total"]
    assert any(b["as_written"] < a["as_written"] for a, b in zip(one["layers"], two["layers"],
                                                               strict=True) if a["name"] in faster)


def test_as_written_counts_the_loops_the_model_leaves_out(graph_for, designs, tmp_path):
    """Beside the modelled engine's count, the C-sim counts the kernel as the HLS code is
    written: the loops the modelled hardware does not have (the fused pool's lanes), its
    read rounds a beat per port and trip, its write-back at the II its requantization lanes
    allow. That count is never below the modelled one."""
    graph = graph_for("resnet18_small", "zcu102")
    board, d = designs["zcu102"]
    save_artifact(graph, tmp_path / "art")
    write_project(graph, d, load_board(board), tmp_path / "prj", tmp_path / "art")
    x = np.random.default_rng(0).integers(-128, 128, size=(1, *graph.tensors[graph.input].shape))
    r = compare(tmp_path / "prj", x)
    layers = r["cycles"]["layers"]
    assert all(ly["as_written"] >= ly["csim"] for ly in layers)
    assert r["cycles"]["as_written_total"] > r["cycles"]["total"]
    assert r["as_written_fps"] < r["fps"]


def test_a_library_without_the_as_written_counters_is_refused(graph_for, designs, tmp_path):
    """A project generated before the as-written count reports fewer counters per layer:
    the C-sim says so and names the fix instead of reading past its stats."""
    graph = graph_for("user_cnn", "zcu102")
    board, d = designs["zcu102"]
    write_project(graph, d, load_board(board), tmp_path / "prj")
    api = tmp_path / "prj/csim/csim_api.cpp"
    text = api.read_text().replace("int filmqnn_csim_stats() { return N_STATS; }", "")
    api.write_text(text)
    meta = json.loads((tmp_path / "prj/project.json").read_text())
    meta["files"]["csim/csim_api.cpp"] = hashlib.sha256(text.encode()).hexdigest()
    (tmp_path / "prj/project.json").write_text(json.dumps(meta))
    with pytest.raises(CsimError, match="regenerate the project"):
        CsimEngine(tmp_path / "prj")


def test_an_all_8bit_layer_follows_the_kernel(lower_models, designs, tmp_path):
    """Torchvision ResNet-18's 8-bit 7x7 stem (64 filters) on the ZCU102 design runs each
    16-filter pass as two split8 sub-passes of 8 filters and writes the pass once: the
    model walks the same passes and counts the same cycles within 0.5 %."""
    from test_csim_bit_exact import _torchvision_graph

    from filmqnn.hw.design import IMPLEMENTED
    from filmqnn.hw.performance import split8_capacity

    graph = _torchvision_graph(lower_models, "resnet18", designs, "zcu102")
    board, d = designs["zcu102"]
    assert d["Tm"] // int(split8_capacity(d["Tm"] - d["Tm8"], d["Tm8"], IMPLEMENTED)) == 2
    save_artifact(graph, tmp_path / "art")
    write_project(graph, d, load_board(board), tmp_path / "prj", tmp_path / "art")
    x = np.random.default_rng(0).integers(-128, 128, size=(1, *graph.tensors[graph.input].shape))
    r = compare(tmp_path / "prj", x)
    stem = r["cycles"]["layers"][0]
    assert r["mismatches"] == 0 and stem["name"] == "conv1" and stem["error"] <= 0.005, stem

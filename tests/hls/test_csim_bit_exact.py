"""C-simulation of the generated kernel equals the integer reference bit for bit."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from filmqnn.hls import csim
from filmqnn.hls.csim import CsimEngine
from filmqnn.hls.ddr_image import split_nibbles, unroll
from filmqnn.hls.layout import DESC_FIELDS, STORE_BIT
from filmqnn.hls.project import ProjectError, write_project
from filmqnn.hw.design import IMPLEMENTED, KERNEL_MODES, EngineOptions
from filmqnn.hw.devices import load_board
from filmqnn.lower.artifact import save_artifact
from filmqnn.ref.executor import ReferenceExecutor

MODELS = ("resnet18_small", "resnet50_small", "mobilenet_v2_small", "user_cnn")


def _frames(shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Random frames and the extremes: all -128 (both nibble planes at their ends), all 127,
    all zero."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=shape), np.full(shape, -128), np.full(shape, 127),
            np.zeros(shape, np.int64)]


#: Kernel modes a project can switch off (the descriptor queue is how the kernel runs).
SWITCHABLE = sorted(KERNEL_MODES - {"layer_queue"})


def _check(graph, designs, design_key: str, tmp_path, opts=IMPLEMENTED,
           native_pe: bool = True) -> CsimEngine:
    board, design = designs[design_key]
    # with the artifact the descriptors carry the model's per-layer choices (chunks per step)
    save_artifact(graph, tmp_path / "art")
    write_project(graph, design, load_board(board), tmp_path / "prj", tmp_path / "art", opts=opts)
    eng = CsimEngine(tmp_path / "prj", native_pe)
    ref = ReferenceExecutor(graph)
    for x in _frames(tuple(graph.tensors[graph.input].shape), 0):
        got = eng.run(x).outputs[0]
        want = ref.run_int(torch.from_numpy(x[None]).to(torch.int32))[0][0].numpy()
        assert np.array_equal(got, want), (design_key, np.abs(got - want).max())
    return eng


def _off_and_on(graph, designs, design_key: str, tmp_path, mode: str, x: np.ndarray,
                base: EngineOptions = IMPLEMENTED) -> dict[bool, tuple[dict, np.ndarray]]:
    """The kernel built with ``mode`` off and on (each checked bit-exact): per setting the
    project's layout and the per-layer counters of frame ``x``."""
    runs = {}
    for on in (False, True):
        eng = _check(graph, designs, design_key, tmp_path / str(on),
                     replace(base, **{mode: on}))
        runs[on] = (eng.meta["layout"], eng.run(x).stats)
    return runs


@pytest.mark.release_build
@pytest.mark.parametrize("name", MODELS)
def test_models_on_zcu102_design(graph_for, designs, name, tmp_path):
    _check(graph_for(name, "zcu102"), designs, "zcu102", tmp_path)


@pytest.mark.release_build
@pytest.mark.parametrize("name", ("resnet18_small", "mobilenet_v2_small", "user_cnn"))
def test_models_on_pynq_design(graph_for, designs, name, tmp_path):
    _check(graph_for(name, "pynq-z2"), designs, "pynq-z2", tmp_path)


@pytest.mark.parametrize("name,design", [("resnet18_small", "pynq-z2"),
                                         ("mobilenet_v2_small", "pynq-z2"),
                                         ("resnet50_small", "zcu102")])
def test_ap_int_build(graph_for, designs, name, design, tmp_path):
    """The kernel as synthesis reads it (ap_int, not the C-sim library's 64-bit integers and
    its own loops), end to end: the PE multiplies, the read rounds over several channel groups
    with the zero padding beside them, a multi-chunk step's weights in one stream, the
    accumulators started by each step's first tap."""
    _check(graph_for(name, design), designs, design, tmp_path, native_pe=False)


def test_native_build_without_avx512(graph_for, designs, tmp_path, monkeypatch):
    """The native build's portable DSP-product loop (a CPU without AVX-512: no vpmuldq
    lanes) gives the same outputs."""
    monkeypatch.setattr(csim, "NATIVE_PE", (*csim.NATIVE_PE, "-mno-avx512f"))
    _check(graph_for("resnet18_small", "pynq-z2"), designs, "pynq-z2", tmp_path)


@pytest.mark.parametrize("name", ("mobilenet_v2_small", "user_cnn"))
def test_every_multiply_on_luts(graph_for, designs, name, tmp_path):
    """No DSPs: PE4 / PE8 on fabric, depthwise rows at two pixels per cycle."""
    _check(graph_for(name, "fabric"), designs, "fabric", tmp_path)


def test_counters_report_every_layer(graph_for, designs, tmp_path):
    eng = _check(graph_for("user_cnn", "zcu102"), designs, "zcu102", tmp_path)
    run = eng.run(np.zeros(tuple(eng.meta["input_shape"]), np.int64))
    assert run.stats.shape[0] == len(eng.layer_names)
    assert np.all(run.stats[:, 0] > 0) and np.all(run.stats[:, 2] > 0)


def test_a_frame_outputs_outlive_the_next(graph_for, designs, tmp_path):
    """The engine reuses one DDR buffer for every frame; what a run returned stays."""
    eng = _check(graph_for("user_cnn", "zcu102"), designs, "zcu102", tmp_path)
    a, b = _frames(tuple(eng.meta["input_shape"]), 1)[:2]
    first = eng.run(a).outputs[0]
    kept = first.copy()
    assert not np.array_equal(eng.run(b).outputs[0], kept)
    assert np.array_equal(first, kept)


def test_multi_chunk_steps(graph_for, designs, tmp_path):
    """1x1 convs run several Tn chunks per step where the model chooses so."""
    eng = _check(graph_for("resnet50_small", "zcu102"), designs, "zcu102", tmp_path)
    chunks = [ly["chunks"] for ly in eng.meta["layout"]["layers"] if ly["kh"] == 1]
    assert max(chunks) > 1


def test_input_reuse_loads_each_input_once(graph_for, designs, tmp_path):
    """Where one step holds all input channels, the tile's later passes load weights only."""
    graph = graph_for("resnet50_small", "pynq-z2")
    x = np.zeros(tuple(graph.tensors[graph.input].shape), np.int64)
    beats = {}
    for on, (layout, stats) in _off_and_on(graph, designs, "pynq-z2", tmp_path, "input_reuse",
                                           x).items():
        reused = [i for i, ly in enumerate(layout["layers"]) if ly["op"] == "conv"
                  and ly["chunks"] * designs["pynq-z2"][1]["Tn"] >= ly["n"]]
        assert reused
        beats[on] = stats[reused, 2].sum()
    assert beats[True] < beats[False]


@pytest.mark.parametrize("name,design", [("user_cnn", "zcu102"), ("resnet18_small", "pynq-z2")])
def test_onchip_im2col_reads_the_raw_input(graph_for, designs, name, design, tmp_path):
    """With im2col_onchip the host writes the raw 8-bit input (one region, the map padded)
    instead of the unrolled planes, and the first conv reads fewer DDR beats; its compute
    takes its columns' taps from the raw tile through a window register."""
    graph = graph_for(name, design)
    x = np.random.default_rng(3).integers(-128, 128, size=graph.tensors[graph.input].shape)
    runs = _off_and_on(graph, designs, design, tmp_path, "im2col_onchip", x)
    (off, s_off), (on, s_on) = ((lay, stats[0]) for lay, stats in (runs[False], runs[True]))
    assert off["input_raw"] is None and len(off["input_planes"]) == 2
    c, h, w = graph.tensors[graph.input].shape
    (region,) = on["input_planes"]
    assert region["kind"] == "raw" and on["layers"][0]["raw"][:3] == [c, h, w]
    # the raw region is smaller than the two planes of the unrolled input
    assert region["beats"] < sum(r["beats"] for r in off["input_planes"])
    assert s_on[2] < s_off[2]  # beats the first conv reads
    # the same products, plus the window register's fill at every row of the raw tile
    assert s_on[1] > s_off[1]


@pytest.mark.parametrize("pad", [(0, 0), (1, 2), (3, 3)])
def test_raw_input_layout(pad):
    """pack_raw: channel-major rows of the zero-padded map, each padded to whole beats."""
    from filmqnn.pynq.host_io import input_writes, pack_raw

    x = np.random.default_rng(2).integers(-128, 128, size=(3, 11, 9))
    ph, pw = pad
    bb = 8
    row = -(-(9 + 2 * pw) // bb) * bb
    got = np.frombuffer(pack_raw(x, pad, 64), np.int8).reshape(3, 11 + 2 * ph, row)
    want = np.zeros_like(got)
    want[:, :, :9 + 2 * pw] = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    assert np.array_equal(got, want)
    ((off, raw),) = input_writes(x, [5, 99], 4, 64, 5, raw=pad)
    assert off == 5 * bb and raw.tobytes() == got.tobytes()


def test_feature_map_store_keeps_tensors_off_ddr(graph_for, designs, tmp_path):
    """The model's store plan in the kernel: the tensors it holds have no DDR region, and the
    layers that read or write them move fewer DDR beats (and are no slower)."""
    graph = graph_for("mobilenet_v2_small", "pynq-z2")
    x = np.zeros(tuple(graph.tensors[graph.input].shape), np.int64)
    runs = _off_and_on(graph, designs, "pynq-z2", tmp_path, "fm_store", x,
                       replace(IMPLEMENTED, band_fusion=False))
    stored = {on: [t["kind"] for t in lay["tensors"].values()].count("store")
              for on, (lay, _) in runs.items()}
    assert stored[False] == 0 and stored[True] > 10
    off, on = runs[False][1], runs[True][1]
    # (load beats also hold the weights, which stay in DDR)
    assert on[:, 3].sum() < 0.5 * off[:, 3].sum() and on[:, 2].sum() < off[:, 2].sum()
    assert on[:, 0].sum() <= off[:, 0].sum()


def test_band_fusion_runs_layers_interleaved_through_rings(graph_for, designs, tmp_path):
    """With band_fusion the store holds some tensors as rings of rows: their producer and
    reader run as interleaved descriptors of row bands (bit-exact; each layer's descriptors
    cover its map once), and the layers around a ring move fewer DDR beats."""
    graph = graph_for("mobilenet_v2_small", "pynq-z2")
    x = np.random.default_rng(5).integers(-128, 128, size=graph.tensors[graph.input].shape)
    runs = _off_and_on(graph, designs, "pynq-z2", tmp_path, "band_fusion", x)
    (off, s_off), (on, s_on) = runs[False], runs[True]
    assert off["n_layers"] == len(off["layers"])
    assert on["n_layers"] > len(on["layers"]) == len(off["layers"])
    covered: dict[int, int] = {}
    for i, lo, hi in on["runs"]:
        assert lo == covered.get(i, 0) < hi
        covered[i] = hi
    assert all(covered[i] == ly["r"] for i, ly in enumerate(on["layers"]))
    banded = sorted({i for i, lo, _ in on["runs"] if lo > 0})
    assert banded and s_on[banded, 2].sum() + s_on[banded, 3].sum() < \
        s_off[banded, 2].sum() + s_off[banded, 3].sum()


def test_store_plan_is_checked(graph_for, designs, tmp_path):
    """A store plan the kernel cannot hold (tensors overlapping while live, or past the
    store's end) is refused with the layers named."""
    from filmqnn.hls.plan import FitError, plan_network
    from filmqnn.hls.project import engine_design

    graph = graph_for("resnet18_small", "zcu102")
    board, design = designs["zcu102"]
    d = engine_design(design, load_board(board))
    convs = [n.name for n in graph.nodes if n.op == "conv"][:3]
    with pytest.raises(FitError, match="share store beats"):
        plan_network(graph, d, {name: (1, 0, 0, 0) for name in convs})
    with pytest.raises(FitError, match="overruns"):
        plan_network(graph, d, {convs[0]: (1, 0, d.store_beats - 1, 0)})
    # a band ring read by more than the next layer (the stem's output also feeds a skip)
    with pytest.raises(FitError, match="cannot be a band ring"):
        plan_network(graph, d, {convs[0]: (1, 0, 0, 4)})
    mb = graph_for("mobilenet_v2_small", "zcu102")
    first = next(n.name for n in mb.nodes if n.op == "conv")
    with pytest.raises(FitError, match="needs"):  # fewer rows than one band reads
        plan_network(mb, d, {first: (1, 0, 0, 1)})


#: Each switchable mode off, on the model whose layers it changes most: ResNet-18's stem and
#: 3x3 convs, MobileNet-V2's depthwise layers, band rings and 8-bit first / last layers.
MODE_OFF_RUNS = [("resnet18_small", m) for m in ("first_im2col", "fuse_stem_pool",
                                                 "im2col_onchip", "input_reuse", "multi_chunk")] \
    + [("mobilenet_v2_small", m) for m in ("band_fusion", "dw_taps", "fm_store", "split8")]


def test_every_switchable_mode_is_switched_off_once():
    assert sorted(m for _, m in MODE_OFF_RUNS) == SWITCHABLE


@pytest.mark.parametrize("name,mode", MODE_OFF_RUNS)
def test_each_mode_off(graph_for, designs, name, mode, tmp_path):
    eng = _check(graph_for(name, "zcu102"), designs, "zcu102", tmp_path,
                 replace(IMPLEMENTED, **{mode: False}))
    assert eng.meta["engine"]["opts"][mode] is False


def test_modelled_only_modes_are_refused(graph_for, designs, tmp_path):
    board, design = designs["zcu102"]
    with pytest.raises(ProjectError, match="modelled only"):
        write_project(graph_for("user_cnn"), design, load_board(board), tmp_path / "p",
                      opts=EngineOptions())


@pytest.mark.parametrize("geom", [(3, 3, 1, 1, 1, 1), (7, 7, 2, 2, 3, 3), (3, 2, 2, 1, 0, 1)])
def test_host_im2col_matches_unfold(geom):
    kh, kw, sh, sw, ph, pw = geom
    x = np.random.default_rng(1).integers(-128, 128, size=(3, 11, 9))
    got = unroll(x, geom)
    want = torch.nn.functional.unfold(torch.from_numpy(x[None]).double(), (kh, kw),
                                      padding=(ph, pw), stride=(sh, sw))[0]
    assert np.array_equal(got.reshape(got.shape[0], -1), want.numpy().astype(np.int64))


def test_split8_nibbles_cover_every_8bit_weight():
    w = np.arange(-128, 128)
    hi, lo = split_nibbles(w).astype(np.int64).reshape(2, -1)
    assert np.array_equal(16 * hi + lo + 8, w)
    assert hi.min() == lo.min() == -8 and hi.max() == lo.max() == 7


def _torchvision_graph(lower_models, name: str, designs, design: str, size: int = 32):
    """A torchvision network (1000-class head replaced by 10, 3 input channels) at ``size`` x
    ``size``, calibrated, lowered and reordered for a test design."""
    from filmqnn.lower.reordering import reorder
    from filmqnn.lower.tiling import Tiling

    board, d = designs[design]
    tiling = Tiling(tm=d["Tm"], tm8=d["Tm8"], tn=d["Tn"], g=d["G"],
                    axi_bits=load_board(board).axi_width_bits)
    return reorder(lower_models.build_lowered(name, size, 3), tiling)


def test_torchvision_mobilenet_v2(lower_models, designs, tmp_path):
    """Torchvision MobileNet-V2 (width 1.0, stride-2 stem) at 32x32 on the PYNQ-Z2 design."""
    _check(_torchvision_graph(lower_models, "mobilenet_v2", designs, "pynq-z2"), designs,
           "pynq-z2", tmp_path)


@pytest.mark.parametrize("design", ("zcu102", "pynq-z2", "fabric"))
def test_fused_stem_pool(lower_models, designs, design, tmp_path):
    """Torchvision ResNet-18 at 32x32 (stem conv 16x16 over 64 channels, max pool 8x8): with
    fuse_stem_pool the pool runs in the stem's write-back, bit-exact with even and odd tile
    sizes (its windows then need halo rows and columns of the neighbouring tiles) and
    channel passes; the pool layer and the unpooled map's round trip are gone. The pool's
    lanes in the write-back are loops the modelled engine does not have: the as-written
    count has their trips."""
    graph = _torchvision_graph(lower_models, "resnet18", designs, design)
    x = np.random.default_rng(4).integers(-128, 128, size=graph.tensors[graph.input].shape)
    runs = _off_and_on(graph, designs, design, tmp_path, "fuse_stem_pool", x)
    (off, s_off), (on, s_on) = runs[False], runs[True]
    assert [ly["op"] for ly in off["layers"][:2]] == ["conv", "maxpool"]
    assert len(on["layers"]) == len(off["layers"]) - 1 and on["layers"][1]["op"] != "maxpool"
    assert s_on[0, 3] < s_off[0, 3] or s_on[0, 3] == s_off[0, 3] == 0
    assert s_on[:, 0].sum() < s_off[:, 0].sum()
    assert s_on[0, 6] > 0 and s_on[1:, 6].sum() == s_off[:, 6].sum() == 0  # unpack


@pytest.mark.parametrize("off", ({"im2col_onchip": False},
                                 {"im2col_onchip": False, "first_im2col": False},
                                 {"fm_store": False}))
def test_fused_stem_pool_with_other_first_convs(lower_models, designs, off, tmp_path):
    """The fused pool behind a host-unrolled or a direct 7x7 first conv, and with the
    pooled map in DDR; at 36x36 the pooled map is 9x9 (its last window clipped)."""
    graph = _torchvision_graph(lower_models, "resnet18", designs, "pynq-z2", 36)
    eng = _check(graph, designs, "pynq-z2", tmp_path, replace(IMPLEMENTED, **off))
    assert eng.meta["layout"]["layers"][1]["op"] != "maxpool"


def test_raw_window_as_synthesis_sees_it(lower_models, designs, tmp_path):
    """The on-chip im2col's window register (a 7x7 stride-2 stem: its window fills over two
    trips, then moves on by four raw columns a pixel pair) in the ap_int build, the code
    synthesis reads (the native build unrolls channel by channel)."""
    graph = _torchvision_graph(lower_models, "resnet18", designs, "pynq-z2")
    eng = _check(graph, designs, "pynq-z2", tmp_path, native_pe=False)
    assert eng.meta["layout"]["layers"][0]["raw"][3:7] == [7, 7, 2, 2]  # kh, kw, sh, sw


def test_tiles_wider_than_32_columns(lower_models, designs, tmp_path):
    """Tiles of 36 columns (the C-sim splits a row's pixel pairs 32 columns at a time):
    torchvision ResNet-18 at 72x72, its stem's on-chip im2col a 1x1 conv over 36 columns."""
    board, d = designs["pynq-z2"]
    wide = {"wide": (board, {**d, "Tc": 36})}
    graph = _torchvision_graph(lower_models, "resnet18", designs, "pynq-z2", 72)
    _check(graph, wide, "wide", tmp_path)


def test_ddr_only_access_at_a_store_address_is_refused(graph_for, designs, tmp_path):
    """The tables, weights and descriptors move through DDR-only accessors (no test for a
    feature-map store address); the C-simulation refuses a run where one of them meets a
    store address instead of reading the store."""
    eng = _check(graph_for("user_cnn", "zcu102"), designs, "zcu102", tmp_path)
    lay = eng.meta["layout"]
    word = (lay["queue"] * eng.image.geo.beat_bytes + DESC_FIELDS.index("table_addr") * 4)
    addr = int.from_bytes(eng.base[word:word + 4].tobytes(), "little") | (1 << STORE_BIT)
    eng.base[word:word + 4] = np.frombuffer(addr.to_bytes(4, "little"), np.uint8)
    with pytest.raises(csim.CsimError, match="DDR-only"):
        eng.run(np.zeros(tuple(eng.meta["input_shape"]), np.int64))

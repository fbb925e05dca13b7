"""Fixtures of the HLS tests: the lowering tests' calibrated models, reordered for a design."""

import pytest

from filmqnn.hls import csim
from filmqnn.hw.devices import load_board
from filmqnn.lower.reordering import reorder
from filmqnn.lower.tiling import Tiling

#: Designs the tests generate kernels for: ZCU102 (DSP48E2, 128-bit AXI, G = 8 so Tn = 4
#: chunks start inside activation words), PYNQ-Z2 (DSP48E1, 64-bit, G = 4) and a design with
#: every multiply on LUTs (depthwise at two pixels per cycle). The first two hold small
#: feature-map stores that take some of the tensors: 1024 beats in one bank per port, and
#: 3072 beats in two banks per port (twice the ports' width on chip).
DESIGNS = {
    "zcu102": ("zcu102", dict(Tm=16, Tm8=2, Tn=4, Tr=4, Tc=6, G=8, dsp4=20, dsp8=4, post=16,
                              ports=2, clock_mhz=150.0, store=8)),
    "pynq-z2": ("pynq-z2", dict(Tm=16, Tm8=2, Tn=4, Tr=5, Tc=6, G=4, dsp4=56, dsp8=8, post=8,
                                ports=3, clock_mhz=100.0, store=12, store_banks=2)),
    # the PYNQ-Z2 design with 16 input channels a tile: a tile of four channel groups, one
    # per port and more, for the DDR rounds' banks (test_transfer_banks.py)
    "pynq-z2-wide": ("pynq-z2", dict(Tm=16, Tm8=2, Tn=16, Tr=5, Tc=6, G=4, dsp4=56, dsp8=8,
                                     post=8, ports=3, clock_mhz=100.0, store=12,
                                     store_banks=2)),
    "fabric": ("pynq-z2", dict(Tm=16, Tm8=2, Tn=4, Tr=7, Tc=3, G=8, dsp4=0, dsp8=0, post=16,
                               ports=1, clock_mhz=100.0)),
}
TILING = {k: Tiling(tm=d["Tm"], tm8=d["Tm8"], tn=d["Tn"], g=d["G"],
                    axi_bits=load_board(b).axi_width_bits) for k, (b, d) in DESIGNS.items()}


@pytest.fixture(scope="session")
def designs():
    """The test designs by key: (board name, design dict)."""
    return DESIGNS


@pytest.fixture(autouse=True)
def _single_thread(lower_models):
    with lower_models.one_thread():
        yield


@pytest.fixture(autouse=True)
def _quick_native_builds(request, monkeypatch):
    """The C-sim library's native build at -O1 instead of -O3: the same integer semantics
    (-fwrapv), built in about half the time (g++ takes most of a test). Tests marked
    ``release_build`` compile with the flags `filmqnn csim` uses."""
    if request.node.get_closest_marker("release_build") is None:
        monkeypatch.setattr(csim, "NATIVE_PE", tuple("-O1" if f == "-O3" else f
                                                     for f in csim.NATIVE_PE))


@pytest.fixture(scope="session")
def graph_for(lower_models):
    """`graph_for(model, design)`: the model's integer graph reordered for the design."""
    def make(name: str, design: str = "zcu102"):
        return reorder(lower_models.build_lowered(name), TILING[design])
    return make

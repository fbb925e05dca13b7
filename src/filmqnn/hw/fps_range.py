"""A range, not a point: a design's modelled FPS under the nominal assumptions and under a
stated pessimistic set of the assumptions that no kernel source or board datasheet fixes.

The nominal model (``hw.performance``) takes the board's sustained DDR efficiency, the
kernel's pipeline depth (``PIPE_DEPTH``), no overhead per output group beyond what the kernel
counts, and closes timing at the design's clock. The pessimistic set (``PESSIMISTIC``):

* DDR efficiency 0.55 of peak instead of the board's figure (0.7 on the built-in boards). The
  Zynq-7000 TRM (UG585, "DDR Efficiency") measures the PS DDR controller at 79-97 % for
  single access patterns, flat over bursts of 4 to 16 beats, and "designed to have a maximum
  efficiency of approximately 75 %" in a system; a study of the ZCU102 (Manchester, FPT 2019,
  "Unexpected Diversity: Quantitative Memory Analysis for Zynq UltraScale+") measures 75 % of
  the theoretical throughput. 0.55 stands for mixed reads and writes of several masters with
  the CPU running, for which no source gives a figure: an assumption, stated as such.
* Pipeline depth twice ``PIPE_DEPTH``: the DSP stages, field extraction, adder tree and the
  accumulator's read-modify-write may synthesize deeper than the kernel's pragmas ask for; it
  is charged in full on every step (not hidden behind loads), an upper bound on its effect.
* ``GROUP_OVERHEAD`` cycles per output group (the write channel's response, the loop FSM's
  exits and re-entries that C-simulation cannot see).
* Timing closure at ``CLOCK_DERATE`` of the clock where the design uses every DSP of the
  board (routing congestion at full DSP columns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from filmqnn.hw.design import DesignPoint, EngineOptions, engine_layers
from filmqnn.hw.devices import Board
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.performance import PIPE_DEPTH, LayerPerf, m_passes, network_performance


@dataclass(frozen=True)
class Assumptions:
    """The modelling assumptions one end of the range takes."""

    name: str
    ddr_efficiency: float | None  # sustained / peak DDR; None: the board's own figure
    pipe_depth: int  # pipeline fill of a step, cycles
    group_overhead: int  # cycles per output group beyond the kernel's count
    clock_derate: float  # fraction of the clock closed when every DSP of the board is used


NOMINAL = Assumptions("nominal", None, PIPE_DEPTH, 0, 1.0)
#: cycles of one AXI write response plus the loop FSM's exits and re-entries (estimate)
GROUP_OVERHEAD = 32
CLOCK_DERATE = 0.85
PESSIMISTIC = Assumptions("pessimistic", 0.55, 2 * PIPE_DEPTH, GROUP_OVERHEAD, CLOCK_DERATE)


def _steps_and_groups(ly: LayerShape, lp: LayerPerf, d: DesignPoint,
                      opts: EngineOptions) -> tuple[int, int]:
    """Steps and output groups the engine runs for one layer (the model's tile rows and chunks
    per step)."""
    rows = lp.rows or d.Tr
    tiles = -(-ly.R // min(rows, ly.R)) * -(-ly.C // min(d.Tc, ly.C))
    passes = int(m_passes(ly, d.Tm4, d.Tm8, opts)[0])
    groups = tiles * passes
    if ly.kind in ("conv", "fc"):
        chunks = -(-ly.N // d.Tn)
        per_group = -(-chunks // max(lp.chunks, 1)) * ly.planes
    else:
        per_group = 1
    return groups * per_group, groups


def fps_under(layers: list[LayerShape], d: DesignPoint, board: Board, opts: EngineOptions,
              dsp_used: int, a: Assumptions) -> float:
    """Modelled FPS of design ``d`` under the assumptions ``a`` (``dsp_used``: the design's
    DSPs, for the timing-closure derate)."""
    b = board if a.ddr_efficiency is None else replace(
        board, ddr_efficiency=min(board.ddr_efficiency, a.ddr_efficiency))
    perf = network_performance(layers, d, b, opts)
    extra = 0
    if a.pipe_depth != PIPE_DEPTH or a.group_overhead:
        run = engine_layers(layers, opts, d.store_layout(board), d.band_tr)
        for ly, lp in zip(run, perf["layers"], strict=True):
            steps, groups = _steps_and_groups(ly, lp, d, opts)
            extra += steps * max(a.pipe_depth - PIPE_DEPTH, 0) + groups * a.group_overhead
    clock = d.clock_mhz * (a.clock_derate if dsp_used >= board.dsp else 1.0)
    return clock * 1e6 / (perf["cycles"] + extra)


def fps_range(layers: list[LayerShape], d: DesignPoint, board: Board, opts: EngineOptions,
              dsp_used: int) -> dict[str, Any]:
    """The JSON block of ``explore``: FPS nominal and pessimistic, and both assumption sets."""
    return {
        "nominal": fps_under(layers, d, board, opts, dsp_used, NOMINAL),
        "pessimistic": fps_under(layers, d, board, opts, dsp_used, PESSIMISTIC),
        "assumptions": {a.name: asdict(a) for a in (NOMINAL, PESSIMISTIC)},
    }

"""Render the MAC-array Verilog used to calibrate LUT costs (hw/templates/mac_array.v.j2).

Two variants: ``render_lut_array`` (W x A multiplies on LUT fabric into an adder tree and an
accumulator) and ``render_dsp_array`` (packed DSP48E1/E2 slices whose operand offsets, field
slices, read widths and accumulation depth come from a ``PackingScheme``: P accumulates
``accumulate_depth`` cycles, then the fields are extracted with the borrow rule and summed
into fabric accumulators). Both modules have ports ``clk``, ``rst`` (synchronous clear),
``w_in``, ``a_in`` and the accumulator(s); tests/hw/test_mac_verilog_sim.py simulates them
against ``hw.dsp_packing``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2

from filmqnn.hw.dsp_packing import PackingScheme


@dataclass(frozen=True)
class Sum:
    """One adder of a tree: ``name = lhs + rhs`` (``rhs`` None: pass-through), ``width`` bits."""

    name: str
    width: int
    lhs: str
    rhs: str | None


def adder_tree(prefix: str, leaves: list[str], width: int) -> tuple[list[Sum], str, int]:
    """Balanced binary adder tree over ``leaves`` (all ``width`` bits signed); returns root."""
    level, nodes, names = 0, [], list(leaves)
    while len(names) > 1:
        level += 1
        width += 1
        nxt = []
        for k in range(0, len(names), 2):
            name = f"{prefix}_l{level}_{k // 2}"
            rhs = names[k + 1] if k + 1 < len(names) else None
            nodes.append(Sum(name, width, names[k], rhs))
            nxt.append(name)
        names = nxt
    return nodes, names[0], width


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("filmqnn.hw", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_lut_array(
    lanes: int, wbits: int, abits: int, signed_act: bool = False, acc_width: int = 24
) -> str:
    """Verilog module ``mac``: ``lanes`` LUT multiplies -> adder tree -> accumulator."""
    pwidth = wbits + abits + (0 if signed_act else 1)
    tree, root, root_w = adder_tree("s", [f"p{i}" for i in range(lanes)], pwidth)
    return (
        _env()
        .get_template("mac_array.v.j2")
        .render(
            variant="lut",
            lanes=lanes,
            wbits=wbits,
            abits=abits,
            signed_act=signed_act,
            pwidth=pwidth,
            trees=[(tree, root, root_w)],
            acc_width=acc_width,
        )
    )


def render_dsp_array(scheme: PackingScheme, n_dsp: int, acc_width: int = 24) -> str:
    """Verilog module ``mac``: ``n_dsp`` packed DSP primitives accumulating
    ``scheme.accumulate_depth`` cycles in P, field extraction, adder trees, accumulators."""
    spec = scheme.spec
    trees = []
    for k, width in enumerate(scheme.read_widths):
        trees.append(adder_tree(f"f{k}", [f"x{d}_{k}" for d in range(n_dsp)], width + 1))
    ports = {
        p: [
            (kind, idx, t.offset)
            for kind, terms in (("w", scheme.weight_terms), ("a", scheme.act_terms))
            for idx, t in enumerate(terms)
            if t.port == p
        ]
        for p in ("A", "D", "B")
    }
    depth = scheme.accumulate_depth
    return (
        _env()
        .get_template("mac_array.v.j2")
        .render(
            variant="dsp",
            scheme_name=f"{scheme.dsp} {scheme.name} W{scheme.wbits}A{scheme.abits}",
            depth=depth,
            cnt_bits=max(1, (depth - 1).bit_length()),
            n_dsp=n_dsp,
            wbits=scheme.wbits,
            abits=scheme.abits,
            signed_act=scheme.signed_act,
            n_w=len(scheme.weight_terms),
            n_a=len(scheme.act_terms),
            ports=ports,
            fields=scheme.fields,
            read_widths=scheme.read_widths,
            trees=trees,
            acc_width=acc_width,
            dsp=scheme.dsp,
            a_width=spec.a_port,
            d_width=spec.d_port,
            b_width=spec.b_port,
            p_width=spec.p_port,
        )
    )

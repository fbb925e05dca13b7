import json

import pytest

from filmqnn.hw.devices import list_boards, load_board, validate_board

REQUIRED_BOARDS = {"pynq-z2", "zcu102", "zcu104", "ultra96-v2", "kv260", "zc706"}


def test_builtin_boards_load_and_cite_every_figure():
    assert REQUIRED_BOARDS <= set(list_boards())
    for name in list_boards():
        b = load_board(name)
        for k in ("lut", "ff", "dsp", "bram18k", "uram", "axi_width_bits", "axi_ports",
                  "ddr_peak_gbps", "ddr_efficiency", "default_clock_mhz"):
            assert k in b.source, f"{name}: no source for {k}"


def test_data_sheet_figures():
    z = load_board("pynq-z2")
    assert (z.lut, z.ff, z.dsp, z.bram18k, z.dsp_kind, z.axi_width_bits) == (
        53200, 106400, 220, 280, "dsp48e1", 64)
    u = load_board("ZCU102")  # case-insensitive
    assert (u.lut, u.ff, u.dsp, u.bram18k, u.dsp_kind, u.axi_width_bits) == (
        274080, 548160, 2520, 1824, "dsp48e2", 128)
    assert u.family == "ultrascale+" and z.family == "7series"
    assert (z.axi_ports, u.axi_ports) == (4, 6)  # UG585 four S_AXI_HP; DS891 six PL-PS ports
    assert load_board("kv260").uram == 64


def test_unknown_board_lists_known_ones():
    with pytest.raises(ValueError, match="known boards: .*pynq-z2.*zcu102"):
        load_board("zcu999")


def test_user_board_file(tmp_path):
    data = load_board("pynq-z2").to_dict()
    data["name"] = "my-board"
    data["lut"] = 1000
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(data))
    b = load_board(str(p))
    assert b.name == "my-board" and b.lut == 1000


@pytest.mark.parametrize(
    "change, msg",
    [
        ({"lut": -1}, "lut"),
        ({"family": "virtex"}, "family"),
        ({"dsp_kind": "dsp48e2"}, "dsp_kind"),
        ({"axi_width_bits": 100}, "axi_width_bits"),
        ({"ddr_efficiency": 1.5}, "ddr_efficiency"),
        ({"bogus": 1}, "unknown field"),
    ],
)
def test_validation_names_the_field(change, msg):
    data = load_board("pynq-z2").to_dict()
    data.update(change)
    with pytest.raises(ValueError, match=msg):
        validate_board(data)


def test_missing_field_and_missing_file(tmp_path):
    data = load_board("pynq-z2").to_dict()
    del data["dsp"]
    with pytest.raises(ValueError, match="missing field"):
        validate_board(data)
    with pytest.raises(ValueError, match="does not exist"):
        load_board(str(tmp_path / "nope.json"))


def test_ddr_bytes_per_cycle():
    z = load_board("pynq-z2")
    assert z.ddr_bytes_per_cycle(100.0) == pytest.approx(2.1e9 * 0.7 / 1e8)


def test_design_ports_within_the_board(tmp_path):
    from filmqnn.hw.design import DesignPoint

    z = load_board("pynq-z2")
    d = DesignPoint(8, 1, 8, 4, 4, 4)
    assert d.axi_ports(z) == 4 and DesignPoint(8, 1, 8, 4, 4, 4, ports=2).axi_ports(z) == 2
    with pytest.raises(ValueError, match=r"ports must lie in \[1, 4\] on pynq-z2"):
        DesignPoint(8, 1, 8, 4, 4, 4, ports=6).axi_ports(z)
    data = z.to_dict()
    data["axi_ports"] = 0
    with pytest.raises(ValueError, match="axi_ports must be at least 1"):
        validate_board(data)

"""The board side: Python 3.8 syntax, the register map against the generated kernel, and
PynqDevice against a stand-in for the pynq package's API."""

import ast
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import filmqnn.pynq
from filmqnn.pynq.bundle import Bundle
from filmqnn.pynq.csim_device import CsimDevice
from filmqnn.pynq.deploy import BOARD_MODULES, INIT_PY, RUN_PY
from filmqnn.pynq.device import DeviceError, kernel_args, register_map
from filmqnn.pynq.driver import Accelerator

SRC = Path(filmqnn.pynq.__file__).parent
#: Names whose subscription (PEP 585) or ``|`` union (PEP 604) fails at run time before 3.9 /
#: 3.10; annotations are fine (every board module has ``from __future__ import annotations``).
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}
NEWER_ATTRS = {"removeprefix", "removesuffix", "cache", "bit_count"}


def _runtime_nodes(tree: ast.AST):
    """Every node outside annotations."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    stack.append(child)


def _py38_problems(src: str) -> list[str]:
    tree = ast.parse(src, feature_version=(3, 8))
    problems = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and node.value.id in BUILTIN_GENERICS:
            problems.append(f"line {node.lineno}: {node.value.id}[...] at run time (3.9+)")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and any(
                isinstance(s, ast.Constant) and s.value is None for s in (node.left, node.right)):
            problems.append(f"line {node.lineno}: X | None at run time (3.10+)")
        if isinstance(node, ast.Call) and any(k.arg == "strict" for k in node.keywords):
            problems.append(f"line {node.lineno}: strict= (3.10+)")
        if isinstance(node, ast.Attribute) and node.attr in NEWER_ATTRS:
            problems.append(f"line {node.lineno}: .{node.attr} (3.9+)")
    has_annotations = any(isinstance(n, (ast.AnnAssign, ast.arg)) and n.annotation is not None
                          or isinstance(n, ast.FunctionDef) and n.returns is not None
                          for n in ast.walk(tree))
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                 and any(a.name == "annotations" for a in n.names) for n in tree.body)
    if has_annotations and not future:
        problems.append("annotations without `from __future__ import annotations`")
    return problems


@pytest.mark.parametrize("name", [*BOARD_MODULES, "run.py", "__init__.py"])
def test_board_files_are_python38(name):
    src = {"run.py": RUN_PY, "__init__.py": INIT_PY}.get(name) or (SRC / name).read_text()
    assert _py38_problems(src) == []


def test_the_py38_check_can_fail():
    assert _py38_problems("x: list[int] = []\n")  # no future import
    assert _py38_problems("from __future__ import annotations\ny = list[int]\n")
    assert _py38_problems("for a in zip([1], [2], strict=True):\n    pass\n")
    with pytest.raises(SyntaxError):
        _py38_problems("match x:\n    case 1:\n        pass\n")
    assert not _py38_problems("from __future__ import annotations\n"
                              "def f(a: list[int] | None) -> dict[str, int]:\n    return {}\n")


def _declared_args(project: Path) -> list[tuple[str, int]]:
    """The top function's arguments and their s_axilite register widths, read from the
    generated kernel: signature (engine.h, PORT_PARAMS of engine_config.h), INTERFACE pragmas
    (engine.cpp) and the m_axi address width (run_hls.tcl)."""
    cfg = (project / "src/engine_config.h").read_text()
    sig = re.search(r"void filmqnn_engine\((.*?)\);", (project / "src/engine.h").read_text(),
                    re.S).group(1)
    macros = dict(re.findall(r"^#define (\w+) (.*)$", cfg, re.M))
    sig = re.sub(r"\bPORT_PARAMS\b", macros["PORT_PARAMS"], sig)
    cpp = (project / "src/engine.cpp").read_text()
    iface = {}
    for mode, port, rest in re.findall(r"#pragma HLS INTERFACE (\w+) port=(\w+)(.*)", cpp):
        iface.setdefault(port, {})[mode] = rest
    assert "bundle=control" in iface["return"]["s_axilite"] and "ap_ctrl_hs" in iface["return"]
    addr64 = "config_interface -m_axi_addr64" in (project / "run_hls.tcl").read_text()
    args = []
    for param in (p.strip() for p in sig.split(",")):
        name = re.search(r"(\w+)$", param).group(1)
        (mode, rest), = iface[name].items()
        if mode == "m_axi":
            assert "offset=slave" in rest  # the address is an s_axilite register
            args.append((name, 64 if addr64 else 32))
        else:
            assert mode == "s_axilite" and "bundle=control" in rest
            args.append((name, int(re.search(r"ap_uint<(\d+)>", param).group(1))))
    return args


def test_register_map_rule_on_vitis_vadd():
    """Vitis HLS's vadd(in1, in2, out, size) header: 0x10, 0x1c, 0x28, 0x34."""
    assert register_map([("in1", 64), ("in2", 64), ("out", 64), ("size", 32)]) == {
        "in1": 0x10, "in2": 0x1C, "out": 0x28, "size": 0x34}


@pytest.mark.parametrize("name", ["resnet18_small", "resnet50_small"])
def test_driver_registers_are_the_kernels(deployed, name):
    _, _, prj, bundle = deployed(name)
    declared = _declared_args(prj)
    b = Bundle.load(bundle)
    assert declared == kernel_args(b.ports)
    regs = register_map(declared)
    if b.ports == 3:
        assert regs == {"mem0": 0x10, "mem1": 0x1C, "mem2": 0x28, "queue": 0x34,
                        "n_layers": 0x3C}
    dev = CsimDevice.from_project(prj)
    acc = Accelerator(b, dev)
    addr = acc.buf.physical_address
    for p in range(b.ports):
        assert dev.regs[regs[f"mem{p}"]] == addr & 0xFFFFFFFF
        assert dev.regs[regs[f"mem{p}"] + 4] == addr >> 32
    assert dev.regs[regs["queue"]] == b.meta["layout"]["queue"]
    assert dev.regs[regs["n_layers"]] == b.meta["layout"]["n_layers"]


def _fake_pynq(csim: CsimDevice, registers: dict) -> types.ModuleType:
    """A stand-in for the pynq package (Overlay, allocate, the IP's read/write) that forwards
    to a C-sim device, shaped like PYNQ 2.7 / 3.0's API."""

    class Buffer(np.ndarray):
        def flush(self):
            self.flushed = True

        def invalidate(self):
            pass

        def freebuffer(self):
            pass

    def allocate(shape, dtype):
        assert dtype == np.uint8
        raw = csim.allocate(shape[0])
        buf = raw.view(Buffer)
        buf.physical_address = raw.physical_address
        return buf

    class IP:
        def write(self, offset, value):
            csim.write_reg(offset, value)

        def read(self, offset):
            return csim.read_reg(offset)

    class Overlay:
        def __init__(self, path, download=True):
            self.ip_dict = {"filmqnn_engine_0": {"registers": registers}}
            self.filmqnn_engine_0 = IP()

    mod = types.ModuleType("pynq")
    mod.Overlay, mod.allocate = Overlay, allocate
    return mod


def _hwh_registers(ports: int, shift: int = 0) -> dict:
    regs = {}
    for name, off in register_map(kernel_args(ports)).items():
        if name.startswith("mem"):
            regs[f"{name}_1"] = {"address_offset": off}
            regs[f"{name}_2"] = {"address_offset": off + 4}
        else:
            regs[name] = {"address_offset": off + (shift if name == "queue" else 0)}
    return regs


def test_pynq_device_through_the_pynq_api(deployed, fmnist, reference_logits, tmp_path,
                                          monkeypatch, capsys):
    from filmqnn.pynq.pynq_device import PynqDevice

    graph, _, prj, bundle = deployed("resnet18_small")
    b = Bundle.load(bundle)
    (tmp_path / "filmqnn.bit").write_bytes(b"bit")
    (tmp_path / "filmqnn.hwh").write_text("<hwh/>")
    csim = CsimDevice.from_project(prj)
    monkeypatch.setitem(sys.modules, "pynq", _fake_pynq(csim, _hwh_registers(b.ports)))
    acc = Accelerator(b, PynqDevice(tmp_path / "filmqnn.bit", b.ports))
    images, x, _ = fmnist
    assert np.array_equal(acc.infer(images[:1]), reference_logits(graph, x[:1]))
    monkeypatch.setitem(sys.modules, "pynq", _fake_pynq(csim, _hwh_registers(b.ports, 4)))
    with pytest.raises(DeviceError, match="register queue is at 0x.* the driver expects"):
        PynqDevice(tmp_path / "filmqnn.bit", b.ports)
    regs = _hwh_registers(b.ports)
    del regs["n_layers"]
    monkeypatch.setitem(sys.modules, "pynq", _fake_pynq(csim, regs))
    PynqDevice(tmp_path / "filmqnn.bit", b.ports)
    assert "lists no register for n_layers" in capsys.readouterr().err
    (tmp_path / "filmqnn.hwh").unlink()
    with pytest.raises(DeviceError, match=r"filmqnn.hwh is missing"):
        PynqDevice(tmp_path / "filmqnn.bit", b.ports)


def test_pynq_device_without_pynq(monkeypatch, tmp_path):
    from filmqnn.pynq.pynq_device import PynqDevice

    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(DeviceError, match="runs on a PYNQ board image"):
        PynqDevice(tmp_path / "filmqnn.bit", 1)

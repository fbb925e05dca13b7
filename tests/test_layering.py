"""The flow's layering (DESIGN.md §1, §8): data flows down the stages and never back.

A stage reads the artifact of the one before it, not its internals: the stages after the
training (lowering, integer reference, hardware model, HLS, board, ONNX) never import
``filmqnn.train``; the hardware model and the HLS writer never import ``filmqnn.quant`` (the
number formats they share with it live outside every stage, in ``filmqnn.formats``) and import
torch only where listed below. Checked on the sources with ``ast`` (every import, also those
inside functions), and by importing the torch-free modules in a fresh interpreter.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "filmqnn"

#: Stages downstream of the training runs: none may import ``filmqnn.train``.
AFTER_TRAINING = ("lower", "ref", "hw", "hls", "pynq", "onnx_export")
#: Stages that must not import the quantization stage (nor, but for ``TORCH_USERS``, torch).
HARDWARE = ("hw", "hls")
#: Modules of ``HARDWARE`` that import torch today, and why. The list may only shrink.
TORCH_USERS = {
    "hw/trace.py": "traces user models and other input sizes with torch.fx",
    "hls/compare.py": "runs the integer reference (torch) against C-simulation",
    "hls/project.py": "the testbench's expected outputs from the integer reference (in a function)",
}
#: Stages downstream of the quantization stage: ``filmqnn.quant`` imports none of them.
AFTER_QUANT = ("train", "lower", "ref", "hw", "hls", "pynq", "onnx_export", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (``from a import b`` gives ``a`` and ``a.b``,
    since ``b`` may be a submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def top_level_imports(path: Path) -> set[str]:
    """The modules ``path`` imports at module level (run when it is imported)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (SRC / pkg).rglob("*.py"))


def offenders(packages: tuple[str, ...], prefixes: tuple[str, ...]) -> dict[str, list[str]]:
    """``{file: imports}`` of the modules of ``packages`` that import under ``prefixes``."""
    found = {}
    for path in sources(*packages):
        bad = sorted(n for n in imported_modules(path) if any(within(n, p) for p in prefixes))
        if bad:
            found[path.relative_to(SRC).as_posix()] = bad
    return found


def test_the_import_parser_sees_every_form(tmp_path, monkeypatch):
    pkg = tmp_path / "filmqnn" / "hw"
    pkg.mkdir(parents=True)
    mod = pkg / "m.py"
    mod.write_text(
        "import torch.nn\nfrom filmqnn import train\nfrom ..quant import config\n"
        "from . import layers\ndef f():\n    from filmqnn.lower.artifact import x\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "filmqnn")
    assert imported_modules(mod) >= {
        "torch.nn", "filmqnn.train", "filmqnn.quant.config", "filmqnn.hw.layers",
        "filmqnn.lower.artifact",
    }
    assert top_level_imports(mod) == {"torch.nn", "filmqnn"}


def test_no_stage_after_training_imports_the_training_stage():
    assert offenders(AFTER_TRAINING, ("filmqnn.train",)) == {}


def test_the_quantization_stage_imports_no_later_stage():
    assert offenders(("quant",), tuple(f"filmqnn.{s}" for s in AFTER_QUANT)) == {}


def test_hardware_stages_do_not_import_the_quantization_stage():
    assert offenders(HARDWARE, ("filmqnn.quant",)) == {}


def test_hardware_stages_import_torch_only_where_listed():
    users = offenders(HARDWARE, ("torch", "torchvision"))
    assert set(users) <= set(TORCH_USERS), {k: v for k, v in users.items()
                                            if k not in TORCH_USERS}
    stale = set(TORCH_USERS) - set(users)
    assert not stale, f"{sorted(stale)} no longer import torch: drop them from TORCH_USERS"


@pytest.mark.parametrize("module", ["formats.py", "tile_rule.py"])
def test_shared_rules_import_nothing_but_the_standard_library_and_numpy(module):
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    assert {n.split(".")[0] for n in imported_modules(SRC / module)} <= allowed


#: Modules the torch-free modules must not pull in, checked in ``sys.modules``.
FORBIDDEN = ("torch", "filmqnn.quant", "filmqnn.train")


def run_fresh(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_importing_the_number_formats_does_not_import_torch():
    run_fresh(
        "import sys\nimport filmqnn.formats, filmqnn.tile_rule\n"
        f"loaded = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )


def test_hardware_modules_load_without_torch_quant_or_train():
    """Every module of ``HARDWARE`` that does not import torch at module level imports,
    in a fresh interpreter, neither torch nor the quantization or training stage."""
    modules = [
        module_name(p) for p in sources(*HARDWARE)
        if not any(within(n, "torch") or within(n, "torchvision") for n in top_level_imports(p))
    ]
    assert "filmqnn.hw.dse" in modules and "filmqnn.hls.project" in modules
    run_fresh(
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"    loaded = [s for s in {FORBIDDEN!r} if s in sys.modules]\n"
        "    assert not loaded, (m, loaded)\n"
    )

#!/usr/bin/env bash
# Install everything filmqnn needs on a fresh Debian machine: Debian packages, a venv, the package.
set -euo pipefail
cd "$(dirname "$0")/.."

# dataset-fashion-mnist: the built-in data set; yosys: LUT calibration; g++: HLS C-simulation;
# tcl: tclsh, which parses the generated Vitis HLS / Vivado scripts in the tests;
# iverilog: simulates the calibration's MAC-array Verilog in tests/hw/test_mac_verilog_sim.py.
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v yosys >/dev/null || missing+=(yosys)
command -v g++ >/dev/null || missing+=(g++)
command -v tclsh >/dev/null || missing+=(tcl)
command -v iverilog >/dev/null || missing+=(iverilog)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=python3.11
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
# torch and torchvision are pinned in pyproject.toml (the wheels on this machine's disk).
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
.venv/bin/python -c "import filmqnn, torch; print('filmqnn ready, torch', torch.__version__)"

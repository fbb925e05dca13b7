#!/usr/bin/env bash
# The main job on built-in data (Fashion-MNIST from Debian's dataset-fashion-mnist), from a
# trained model to the generated accelerator's C-simulation. Run after scripts/setup.sh:
#   bash scripts/demo.sh [OUT_DIR]   (default runs/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/demo}
F=.venv/bin/filmqnn
mkdir -p "$OUT"
# 1. The accelerator for PYNQ-Z2 with the engine modes the generated kernel implements.
$F explore --model resnet18 --board pynq-z2 --json > "$OUT/design.json"
TM=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['design']['Tm'])" "$OUT/design.json")
# 2. Train resnet18_small briefly (12k images, 2 FP32 epochs, 1 QAT epoch each) and quantize
#    it to W8A5, W4A5 and mixed 4/8-bit (R = 5 %, tile rule at the design's Tm): the table.
$F compare --model resnet18_small --epochs 2 --qat-epochs 1 --limit-train 12000 --tm "$TM" --out "$OUT"
# 3. The mixed model as an integer artifact laid out for the design, on the reference executor.
$F export --checkpoint "$OUT/mixed_R_5__A5/quant.pt" --design "$OUT/design.json" --out "$OUT/artifact"
$F run --artifact "$OUT/artifact" --data fashion-mnist
# 4. The Vitis HLS project, and its C-simulation on test images against the reference.
$F hls --artifact "$OUT/artifact" --design "$OUT/design.json" --out "$OUT/hls"
$F csim --project "$OUT/hls" --data fashion-mnist --samples 3

#!/usr/bin/env bash
# The smoke study on CUDA, in bf16 and in fp32, then the quickstart's grid in bf16: wall times, training,
# scoring and sampling throughputs, peak GPU memory. Run wherever a GPU is visible:  bash bench/gpu_smoke.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi -L || { echo "no GPU visible"; exit 2; }
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 bench/gpu_smoke.py --dtype bfloat16 --workdir /tmp/premem-gpu-bf16
python3 bench/gpu_smoke.py --dtype float32 --workdir /tmp/premem-gpu-fp32
[ "${QUICKSTART:-1}" = 1 ] && python3 bench/gpu_smoke.py --spec specs/quickstart.yaml --dtype bfloat16 --workdir /tmp/premem-gpu-qs

#!/usr/bin/env bash
# One command for a session lent a GPU: the CUDA tests, then the GPU benchmarks (< 8 minutes).
#
# The device machine has python3 with a CUDA build of torch but cannot download. Before the run,
# put the wheels of what it lacks into .whl/ here (ignored by git, carried with the tree):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --dest .whl --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#       --platform any optuna pydantic mnist1d alembic sqlalchemy colorlog
# then: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import optuna, pydantic, mnist1d" 2>/dev/null; then
    python3 -m pip install --quiet --no-index --find-links .whl optuna pydantic mnist1d
fi
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name())" | tee "$OUT/device.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.txt"
timeout 240 python3 benchmarks/batched_training.py --device cuda --repeats 3 | tee "$OUT/batched_cnn.json"
timeout 120 python3 benchmarks/batched_training.py --device cuda --repeats 3 --model mlp \
    | tee "$OUT/batched_mlp.json"

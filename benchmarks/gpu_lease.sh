#!/usr/bin/env bash
# The one prepared command for a borrowed GPU machine (Python 3.12, CuPy, JAX and diffrax
# preinstalled, no network): linflow's own dependencies that the image lacks travel as wheels
# in .whl/ (see benchmarks/README.md), then the CuPy test rows and benchmarks/gpu.py run.
# Everything lands in $OUT (gpu.log, gpu-<card>.json, dx/gpu-<card>.json for section 6).
set -o pipefail
OUT=${OUT:-benchmarks/results/tmp}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 LINFLOW_PROGRESS=0 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
LOG=$OUT/gpu.log
{
  echo "# benchmarks/gpu_lease.sh, $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import sys, cupy, numpy, scipy, array_api_compat as a; \
print(sys.version.split()[0], 'cupy', cupy.__version__, 'numpy', numpy.__version__, \
'scipy', scipy.__version__, 'array-api-compat', a.__version__)"
  nproc
  echo; echo "## pytest -k cupy (the engine test files)"
} 2>&1 | tee "$LOG"
timeout 100 python3 -m pytest -q -p no:cacheprovider -k cupy tests/test_backend.py \
    tests/test_bounds.py tests/test_closed_form.py tests/test_flow.py tests/test_init.py \
    tests/test_losses.py tests/test_network.py tests/test_sweep.py 2>&1 | tee -a "$LOG"
echo "## benchmarks/gpu.py --only diffrax" | tee -a "$LOG"
timeout 150 python3 benchmarks/gpu.py --only diffrax --out "$OUT/dx" 2>&1 | tee -a "$LOG"
echo "## benchmarks/gpu.py (sections 1-5)" | tee -a "$LOG"
timeout 300 python3 benchmarks/gpu.py --only agreement gflops throughput sweep structure \
    --out "$OUT" 2>&1 | tee -a "$LOG"

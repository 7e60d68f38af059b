#!/usr/bin/env bash
# Everything a session with a lent GPU machine (no network there) should run, in two
# calls of at most 10 minutes each, writing what to commit into OUTDIR:
#
#   benchmarks/gpu_session.sh tests OUTDIR   # install offline, GPU suite, oracle suite on cuda
#   benchmarks/gpu_session.sh bench OUTDIR   # GPU benchmarks, NCCL data-parallel benchmark
#
# Then copy OUTDIR's files to benchmarks/results/ (they are named DEVICE-DATE and record
# the device, versions, date and commit).
set -uo pipefail
stage=${1:?usage: benchmarks/gpu_session.sh tests|bench OUTDIR}
out=${2:?usage: benchmarks/gpu_session.sh tests|bench OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
py=${PYTHON:-python3}
stamp=$(date -u +%F)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

# The machine already has CuPy, PyTorch, mpi4py, pytest, rich and safetensors: no downloads.
if ! $py -c "import gpugrad" 2>/dev/null; then
    $py -m pip install -q --no-deps --no-build-isolation -e . || exit 1
fi
header() {
    echo "# $1 — $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
    echo "# date $stamp, commit $commit, $($py -c 'import cupy, torch; print("cupy", cupy.__version__, "torch", torch.__version__)')"
}

case $stage in
tests)
    {
        header "pytest -m gpu (kernels against their NumPy references, CUDA graphs, amp, NCCL)"
        $py -m pytest -m gpu -rs -p no:cacheprovider 2>&1
        header "oracle suite repeated on the GPU (GPUGRAD_DEVICE=cuda)"
        GPUGRAD_DEVICE=cuda $py -m pytest tests/ops tests/autograd tests/nn tests/complex \
            tests/optim tests/amp -p no:cacheprovider 2>&1 | tail -60
    } | tee "$out/gpu-tests-$stamp.txt" | tail -40
    ;;
bench)
    {
        header "python -m benchmarks --device cuda"
        $py -m benchmarks --device cuda --json "$out/cuda-$stamp.json" \
            --plot "$out/cuda-$stamp.png" 2>&1
    } | tee "$out/cuda-$stamp.txt"
    ngpu=$(nvidia-smi -L | wc -l)
    $py -m gpugrad run -n "$ngpu" -m benchmarks.distributed --device cuda \
        --out "$out/distributed-cuda-$stamp" 2>&1 | tail -30
    ;;
*)
    echo "unknown stage $stage (tests or bench)" >&2
    exit 2
    ;;
esac

# gpugrad benchmark image.
#   GPU (default target): docker build -t gpugrad-bench .
#                         docker run --rm --gpus all -v "$PWD/results:/results" gpugrad-bench
#   CPU:                  docker build --target cpu -t gpugrad-bench-cpu .
#                         docker run --rm -v "$PWD/results:/results" gpugrad-bench-cpu
# The install step is the README's benchmark command, with the CUDA extra on the GPU.

FROM python:3.11-slim AS cpu
WORKDIR /opt/gpugrad
COPY . .
# The same command as the README's benchmark section.
# hadolint ignore=DL3042
RUN python3 -m venv .venv && .venv/bin/pip install -e ".[bench]"
VOLUME ["/results"]
CMD [".venv/bin/python", "-m", "benchmarks", "--device", "cpu", \
     "--json", "/results/cpu.json", "--plot", "/results/cpu.png"]

FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04 AS gpu
# Ubuntu's own Python; versions are left to the pinned base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gpugrad
COPY . .
# hadolint ignore=DL3042
RUN python3 -m venv .venv && .venv/bin/pip install -e ".[bench,cuda12]"
VOLUME ["/results"]
CMD [".venv/bin/python", "-m", "benchmarks", "--device", "cuda", \
     "--json", "/results/gpu.json", "--plot", "/results/gpu.png"]

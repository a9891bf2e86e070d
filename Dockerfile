# rnnkit on the CPU, from Debian's own Python.
#   docker build -t rnnkit .
#   docker run --rm -v "$PWD:/data" -w /data rnnkit train input.txt --time_budget 2m
# (add --user "$(id -u):$(id -g)" so the run folder belongs to you, not root)
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

ENV PATH=/opt/rnnkit/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib
RUN python3 -m venv /opt/rnnkit

# PyPI's torch is the CUDA build (gigabytes); the CPU wheel comes from PyTorch's own index.
# Override for a mirror or a folder of wheels: --build-arg TORCH_PIP_ARGS="--find-links /wheels".
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
COPY constraints.txt /src/
RUN pip install $TORCH_PIP_ARGS -c /src/constraints.txt torch

COPY pyproject.toml README.md LICENSE /src/
COPY src /src/src
RUN pip install -c /src/constraints.txt "/src[serve]" && rm -rf /src

WORKDIR /data
EXPOSE 8000
ENTRYPOINT ["rnnkit"]
CMD ["--help"]

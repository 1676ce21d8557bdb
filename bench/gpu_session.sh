#!/usr/bin/env bash
# genkit's GPU checks in one command of at most 9 minutes: the gpu-marked tests (tests/test_gpu.py), the
# avatar on CUDA (bench/avatar_gpu.py: 512^2 and 128^2, eager and compiled, the avatar against both
# baselines; the head-avatar issue's target is 30 fps at 512^2) and the neural-field bench on CUDA
# (bench/nerf.py --quick: occupancy grid vs uniform sampling, torch vs Triton). Every step has its own
# time limit; the log and the JSON results go to $OUT (the device tool's folder; /tmp/gpu-session
# elsewhere), to be copied into bench/results/ and BENCHMARKS.md.
#
# A machine lent through /work/.library's device tool starts from an image that has torch, numba, triton,
# accelerate, transformers and peft but neither diffusers nor trimesh, and reaches no package index: their
# pure-Python wheels travel in .whl/ and the lego scene (outside the checkout, ../shared) in .gpu-data/,
# both git-ignored and named in the run's carry. Here, once per checkout:
#     bash bench/gpu_session.sh --fetch
# then the device run: command "bash bench/gpu_session.sh", carry [".whl", ".gpu-data"], timeout_s 600.
# The tracked tree is ~55 MB of the 64 MiB that may travel, so the bench's trained models stay here: the
# avatar is the shipped avatar-head (the same training), the baselines untrained (same speed).
# On any other CUDA machine after `make setup`: bash bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
LEGO=../shared/data/lego_100

if [[ ${1:-} == --fetch ]]; then
    versions=$($PY -c 'from importlib.metadata import version as v; print(*(f"{p}=={v(p)}" for p in ("diffusers", "trimesh")))') || exit 1
    rm -rf .whl .gpu-data && mkdir -p .whl .gpu-data || exit 1
    # pure-Python wheels (py3-none-any): the device's Python 3.12 takes them as they are
    $PY -m pip download -q --no-deps --only-binary=:all: -d .whl $versions || exit 1
    if [[ -d $LEGO ]]; then
        cp -r "$LEGO" .gpu-data/ && chmod -R u+w .gpu-data
    else
        echo "note: no $LEGO here; the device run will skip bench/nerf.py"
    fi
    du -sh .whl .gpu-data
    echo "wrote .whl/ ($versions) and .gpu-data/; device run: command 'bash bench/gpu_session.sh', carry ['.whl', '.gpu-data']"
    exit 0
fi

OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT"
LOG=$OUT/log.txt
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_MININTERVAL=30  # progress bars every 30 s: the tool keeps the last 12 kB
T0=$SECONDS

step() {  # step NAME LIMIT_S CMD...: run CMD with a time limit, its output in the log
    local name=$1 limit=$2 t=$SECONDS
    shift 2
    echo "== $name (limit ${limit} s): $*" | tee -a "$LOG"
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    echo "== $name: rc ${PIPESTATUS[0]}, $((SECONDS - t)) s (total $((SECONDS - T0)) s)" | tee -a "$LOG"
}

# what the image lacks: the carried wheels, then genkit itself (editable, no index, no dependency resolution)
if ! $PY -c 'import diffusers, trimesh' 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "error: no diffusers/trimesh here and no .whl/: run 'bash bench/gpu_session.sh --fetch' where pip works, and carry .whl" | tee -a "$LOG"
        exit 2
    fi
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 |
        tee -a "$LOG" || exit 2
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! $PY -c 'import genkit.render.avatar' 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tee -a "$LOG" || exit 2
fi

step env 60 bash -c "nvidia-smi -L; $PY -c 'import torch, triton, numba, diffusers; print(\"torch\", torch.__version__, \"triton\", triton.__version__, \"numba\", numba.__version__, \"diffusers\", diffusers.__version__); print(torch.cuda.get_device_name() if torch.cuda.is_available() else \"no CUDA device\")'"
step tests 180 $PY -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
step avatar 240 $PY bench/avatar_gpu.py --data /tmp/gpu-head --out "$OUT/avatar_gpu.json" ${AVATAR_GPU_ARGS:-}
if [[ -d .gpu-data/lego_100 ]]; then
    step nerf 150 $PY bench/nerf.py --quick --data .gpu-data/lego_100 --run /tmp/gpu-nerf --out "$OUT/nerf.json"
fi
echo "done in $((SECONDS - T0)) s; wrote $OUT" | tee -a "$LOG"

#!/usr/bin/env bash
# The GPU numbers of docs/BENCHMARKS.md, in one short command on a fresh GPU machine:
#
#   scripts/gpu-bench.sh CIFAR10_JPEG_TARBALL OUTDIR
#
# 1. `resnets bench step`: the resnet50 training step at 224x224 beside torchvision's reference
#    loop with --amp (eager, NCHW, fp16 autocast and a GradScaler), eager and compiled;
# 2. `resnets bench infer`: resnet50's inference modes beside torchvision's eager fp32 model;
# 3. `resnets train --recipe fast --compile` of resnet20 on the CIFAR-10 JPEG copy: its wall time
#    and test accuracy (the paper's ResNet-20: 91.25%).
# OUTDIR gets log.txt (every table), step.json, infer.json, fast-results.json and
# fast-metrics.jsonl: five files, under the device tool's limit of eight.
#
# Settings (environment): MODEL (resnet50), RESOLUTION (224), BATCH (128: the step's batch; infer
# uses half), ROUNDS (5: each benchmark's rounds over its modes), MODES (infer's modes; default
# all), COMPILE (1; 0 leaves torch.compile out: a test on a CPU), FAST_MODEL (resnet20),
# FAST_EPOCHS (the recipe's 30), INSTALL (1; 0 when resnets is installed already), WORK (scratch
# folder, default /tmp/resnets-bench). Each step has its own time limit, so one that hangs leaves
# the others their time.
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 CIFAR10_JPEG_TARBALL OUTDIR" >&2
    exit 2
fi
tarball=$1
out=$2
model=${MODEL:-resnet50}
resolution=${RESOLUTION:-224}
batch=${BATCH:-128}
rounds=${ROUNDS:-5}
work=${WORK:-/tmp/resnets-bench}
export RESNETS_CACHE=$work/cache PYTHONUNBUFFERED=1
mkdir -p "$out"
source "$(dirname "$0")/gpu-lib.sh"

# A benchmark: its table in the log, its JSON in OUTDIR/NAME.json.
bench() {
    local limit=$1 name=$2
    shift 2
    step "$limit" "${resnets[@]}" bench "$@" --results-file "$out/$name.json"
}

install_checkout
unpack_data "$tarball"

compile=(--compile) no_compile=()
[ "${COMPILE:-1}" = 1 ] || { compile=(); no_compile=(--no-compile); }
modes=()
[ -n "${MODES:-}" ] && read -ra modes <<<"--modes $MODES"
bench 150 step step --model "$model" --resolution "$resolution" --batch-size "$batch" --rounds "$rounds" --steps 5 --warmup 5 \
    "${no_compile[@]}"
bench 120 infer infer --model "$model" --resolution "$resolution" --batch-size $((batch / 2 > 0 ? batch / 2 : 1)) \
    --rounds "$rounds" "${modes[@]}"
epochs=()
[ -n "${FAST_EPOCHS:-}" ] && epochs=(--epochs "$FAST_EPOCHS")
step 240 "${resnets[@]}" train --recipe fast --model "${FAST_MODEL:-resnet20}" --data "$data" "${epochs[@]}" "${compile[@]}" \
    --out "$work/fast"
cp "$work/fast/results.json" "$out/fast-results.json" 2>/dev/null
cp "$work/fast/metrics.jsonl" "$out/fast-metrics.jsonl" 2>/dev/null
say "done: $(ls "$out" | tr '\n' ' ')"

#!/usr/bin/env bash
# The paper's CIFAR-10 experiments (Section 4.2: Table 6, Fig. 6) at full scale on one fresh GPU
# machine, in one command that ends by itself within its time budget:
#
#   scripts/gpu-reproduce.sh CIFAR10_JPEG_TARBALL OUTDIR
#
# 1. installs this checkout (pip install --no-deps -e .; torch and the rest must be there);
# 2. a smoke test: a few training steps in bf16 (--precision auto: bf16 on a GPU, fp32 on a CPU
#    that would only emulate it) with channels_last, the same with --compile
#    (CUDA graphs), then `resnets eval` and `resnets predict` of the result;
# 3. `resnets reproduce all --scale full --jobs $JOBS`: resnet20, resnet56, resnet32, resnet44,
#    resnet110, plain20, plain56, ... in that order, $JOBS at a time; beside them, the independent
#    ResNet-20 of scripts/reference_cifar.py on the same data at the scale's iterations and batch
#    size (fp32, torchvision's pipeline), and
#    our resnet20 in fp32 (run resnet20-fp32), to compare with the jobs' bf16;
# 4. every 20 s and at the end, one tarball per run in OUTDIR (run-KEY.tar.gz: config, metrics,
#    results, final weights; the training state of a run not yet finished, so it can be resumed
#    with `resnets train --resume`), and OUTDIR/log.txt. Runs that were finished before the script
#    started (resumed from RESUME_FROM, or left in WORK by an earlier call) get none.
#
# Settings (environment):
#   BUDGET            seconds for the whole script (default 540)
#   SCALE             full; smoke for a test on a CPU
#   EXPERIMENT        all, or one experiment: its runs only
#   ONLY              some of those runs alone, comma-separated (reproduce --only): resnet20,resnet32,
#                     resnet44,resnet56 are issue 7's four nets within 9 minutes
#   SEEDS             train each network with seeds 0 to SEEDS-1 (reproduce --seeds; default 1): with
#                     RESUME_FROM holding seed 0's finished runs, only the new seeds train
#   JOBS              runs trained at once (4)
#   RUNS              how many run tarballs at most (7; with log.txt the device tool's limit of 8
#                     files): the runs this call trains take them in priority order, the
#                     independent ResNet-20 and resnet20-fp32 last
#   REFERENCE         1: train the independent ResNet-20 too
#   FP32              1: train resnet20-fp32 too
#   SMOKE             1; 0 skips the smoke test, on a machine that passed it
#   SMOKE_ITERATIONS  400
#   RESUME_FROM       a folder of run-KEY.tar.gz from an earlier call: those runs continue where
#                     they stopped
#   INSTALL           1; 0 when resnets is installed already
#   WORK              scratch folder (default /tmp/resnets-gpu)
#   MPS               1: run the jobs under CUDA's Multi-Process Service when it starts, so that
#                     their kernels share the GPU at once rather than by turns
# Runs already in WORK are resumed, not restarted: a second call on the same machine continues.
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 CIFAR10_JPEG_TARBALL OUTDIR" >&2
    exit 2
fi
tarball=$1
out=$2
budget=${BUDGET:-540}
scale=${SCALE:-full}
experiment=${EXPERIMENT:-all}
jobs=${JOBS:-4}
runs=${RUNS:-7}
smoke_iterations=${SMOKE_ITERATIONS:-400}
work=${WORK:-/tmp/resnets-gpu}
export RESNETS_CACHE=$work/cache PYTHONUNBUFFERED=1
mkdir -p "$out"
source "$(dirname "$0")/gpu-lib.sh"
left() { echo $((budget - (SECONDS - start))); }
# One tarball per run of $packed, written atomically: finished runs without their checkpoints folder.
pack() {
    local dir key
    for key in $packed; do
        dir=$work/full/runs/$key
        [ -d "$dir" ] || continue
        if [ -f "$dir/results.json" ]; then
            tar czf "$out/run-$key.tar.gz.tmp" --warning=no-file-changed -C "$work/full/runs" --exclude=checkpoints "$key"
        else  # the training state holds the weights too: the last epoch's weights file would only add to its size
            tar czf "$out/run-$key.tar.gz.tmp" --warning=no-file-changed -C "$work/full/runs" \
                --exclude=checkpoints/last.safetensors "$key"
        fi
        mv "$out/run-$key.tar.gz.tmp" "$out/run-$key.tar.gz"
    done
}

install_checkout
# What the rest needs from Python, asked once (each python3 that imports resnets takes seconds):
# the versions and the GPU (for the log), whether there is a GPU, the scale's iterations and batch
# size, and the experiment's runs in priority order (seed 0 of each, then seed 1, ...).
{ read -r versions; read -r cuda iterations batch order; } <<<"$(python3 -c "import platform, torch
from resnets.experiments import EXPERIMENTS, SCALES, runs_of
from resnets.experiments.runner import seeded
print('torch', torch.__version__, '| python', platform.python_version(), '|',
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')
scale, names = SCALES['$scale'], list(EXPERIMENTS) if '$experiment' == 'all' else ['$experiment']
only = '${ONLY:-}'.split(',') if '${ONLY:-}' else None
print(int(torch.cuda.is_available()), scale.iterations, scale.batch_size,
      *[seeded(s, seed).key for seed in range(${SEEDS:-1}) for s in runs_of(names, scale) if only is None or s.key in only])" \
      2>>"$out/log.txt")"
echo "$versions" | tee -a "$out/log.txt"
if [ -z "$order" ]; then
    say "unknown SCALE=$scale or EXPERIMENT=$experiment"
    exit 2
fi
unpack_data "$tarball"

if [ "$cuda" = 1 ] && [ "${MPS:-1}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null; then
    export CUDA_MPS_PIPE_DIRECTORY=$work/mps CUDA_MPS_LOG_DIRECTORY=$work/mps-log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if nvidia-cuda-mps-control -d && timeout 30 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()"; then
        trap 'echo quit | nvidia-cuda-mps-control' EXIT
        say "CUDA MPS started: the jobs' kernels run side by side"
    else
        echo quit | nvidia-cuda-mps-control 2>/dev/null
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
        say "CUDA MPS did not start: the jobs share the GPU by time slices"
    fi
fi

# 2. Smoke: the same code paths as the full runs, a few steps each (400 iterations: one epoch of
# CIFAR-10, its evaluation, and the start of the next). The first also decodes and
# caches the data set for every later run.
smoke=(--model resnet20 --data "$data" --recipe cifar --iterations "$smoke_iterations" --precision auto --channels-last)
compile=()
if [ "${SMOKE:-1}" = 0 ]; then
    [ "$cuda" = 1 ] && compile=(--compile)
    say "no smoke test (SMOKE=0); full runs with: ${compile[*]:-no --compile}"
else
    step 120 "${resnets[@]}" train "${smoke[@]}" --out "$work/smoke/eager"
    if [ "$cuda" = 1 ]; then
        if step 180 "${resnets[@]}" train "${smoke[@]}" --compile --out "$work/smoke/compiled"; then
            compile=(--compile)
        else
            say "the compiled smoke run failed: the full runs go without --compile"
        fi
    else
        say "no CUDA device: --compile (CUDA graphs) is not tried"
    fi
    checked=$work/smoke/eager
    [ ${#compile[@]} -gt 0 ] && checked=$work/smoke/compiled
    step 60 "${resnets[@]}" eval --checkpoint "$checked" --data "$data"
    step 60 "${resnets[@]}" predict --checkpoint "$checked" --top 2 $(find "$data" -name '*.jpg' | sort | head -3)
fi

# 3. The full runs, packed as they go; whatever the budget leaves unfinished stays resumable.
mkdir -p "$work/full/runs"
if [ -n "${RESUME_FROM:-}" ]; then
    for f in "$RESUME_FROM"/run-*.tar.gz; do
        [ -f "$f" ] && tar xzf "$f" -C "$work/full/runs" && say "resuming $(basename "$f")"
    done
    # Their configurations name the data where it was then: point them at this copy.
    python3 - "$work/full/runs" "$data" <<'PY'
import json, pathlib, sys
for config in pathlib.Path(sys.argv[1]).glob("*/config.json"):
    values = json.loads(config.read_text())
    values["data"] = sys.argv[2]
    config.write_text(json.dumps(values, indent=2))
PY
fi
done_before=$(cd "$work/full/runs" && for d in *; do [ -f "$d/results.json" ] && printf '%s ' "$d"; done)
# The runs that get a tarball: the first $runs of those this call trains, in priority order.
packed=$(for key in $order $([ "${REFERENCE:-1}" = 1 ] && echo reference-resnet20) $([ "${FP32:-1}" = 1 ] && echo resnet20-fp32); do
    [[ " $done_before " == *" $key "* ]] || echo "$key"; done | head -n "$runs" | tr '\n' ' ')
say "tarballs of: ${packed:-no run (all finished)}"
reference=$work/full/runs/reference-resnet20
if [ "${REFERENCE:-1}" = 1 ] && [ ! -f "$reference/results.json" ]; then
    mkdir -p "$reference"
    # Its DataLoader workers: 6 on a GPU machine's 16 cores, fewer where cores are few (a test on a CPU).
    reference_workers=$(($(nproc) / 2 > 6 ? 6 : ($(nproc) / 2 < 1 ? 1 : $(nproc) / 2)))
    say "the independent ResNet-20 (scripts/reference_cifar.py) trains beside the jobs; its log: $reference/train.log"
    timeout -s INT $(($(left) - 25)) python3 scripts/reference_cifar.py "$data" "$work/full/runs/reference-resnet20" \
        --iterations "$iterations" --batch-size "$batch" \
        --workers "$reference_workers" >>"$reference/train.log" 2>&1 &
    reference_pid=$!
fi
fp32_run=$work/full/runs/resnet20-fp32
if [ "${FP32:-1}" = 1 ] && [ ! -f "$fp32_run/results.json" ]; then
    # The scale's resnet20 run in every setting but its precision (the reports leave it out),
    # prepared and trained in one process.
    say "our resnet20 in fp32 (run resnet20-fp32) trains beside the jobs; its log: $fp32_run/train.log"
    mkdir -p "$fp32_run"
    timeout -s INT $(($(left) - 25)) python3 - "$fp32_run" "$scale" "$data" "${#compile[@]}" >>"$fp32_run/train.log" 2>&1 <<'PY' &
import pathlib, sys
from resnets.cli import main
from resnets.experiments import SCALES
from resnets.experiments.runner import prepare, run_config, spec
run_dir = pathlib.Path(sys.argv[1])
prepare(run_dir, run_config(spec("resnet20"), SCALES[sys.argv[2]], sys.argv[3], run_dir,
                            {"precision": "fp32", "compile": sys.argv[4] != "0"}))
sys.exit(main(["train", "--resume", str(run_dir)]))
PY
    fp32_pid=$!
fi
# Its output goes to the log, not to the script's stdout: a `sleep` left behind when the loop is
# killed would hold the caller's pipe open for up to 20 s after the script ends.
( while sleep 20; do pack; done ) >>"$out/log.txt" 2>&1 &
packer=$!
if [ "$cuda" = 1 ]; then  # how busy the GPU is, every 30 s
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 30 >>"$out/log.txt" 2>&1 &
    watcher=$!
fi
say "full runs: scale $scale, $jobs at a time, $(left) s left"
step $(($(left) - 20)) "${resnets[@]}" reproduce "$experiment" --scale "$scale" --jobs "$jobs" "${compile[@]}" \
    ${ONLY:+--only "$ONLY"} --seeds "${SEEDS:-1}" --data "$data" --out "$work/full"
kill "$packer" ${watcher:-} 2>/dev/null
wait "$packer" ${reference_pid:-} ${fp32_pid:-} 2>/dev/null
pack
for f in "$out"/run-*.tar.gz; do  # resnet1202's training state, for one, is far bigger
    [ ! -f "$f" ] || [ "$(stat -c %s "$f")" -le $((16 << 20)) ] ||
        say "$(basename "$f") is over 16 MiB, the most the device tool brings back in one file: split it (split -b 15M)"
done
for f in "$work"/full/runs/*/results.json; do
    [ -f "$f" ] && python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print(f\"{sys.argv[1].split('/')[-2]:>12}  test error {100 * r['test_error']:.2f}%  {r['iterations']} iterations  {r['wall_time_s'] / 60:.1f} min  {r['precision']}  {r['device']}\")" "$f" | tee -a "$out/log.txt"
done
say "done: $(ls "$out" | tr '\n' ' ')"

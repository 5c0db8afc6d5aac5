# What scripts/gpu-reproduce.sh and scripts/gpu-bench.sh share, sourced by both: a log with the
# seconds since the start, steps with time limits, installing this checkout, unpacking the data.
# The caller sets $out (the output folder, holding log.txt) and $work (a scratch folder).

start=$SECONDS
resnets=(python3 -m resnets)

say() { echo "[$((SECONDS - start))s] $*" | tee -a "$out/log.txt"; }

# Run a step with a time limit, its output in the log; its exit status is returned.
step() {
    local limit=$1
    shift
    say "\$ $*"
    timeout -s INT -k 10 "$limit" "$@" 2>&1 | tee -a "$out/log.txt"
    return "${PIPESTATUS[0]}"
}

# pip install --no-deps -e . (INSTALL=0 skips it), else run from src/; then name the GPU (torch's
# version is named by the scripts' first python3, each of which costs seconds). On lease 5's image
# the install succeeded but left python3 unable to import resnets: hence the check after it.
install_checkout() {
    if [ "${INSTALL:-1}" = 1 ] && say "installing resnets from $(pwd)" &&
        ! { python3 -m pip install -q --no-deps --no-build-isolation -e . >>"$out/log.txt" 2>&1 &&
            python3 -c "import resnets" 2>>"$out/log.txt"; }; then
        say "pip install failed, or python3 cannot import what it installed: running from src/ instead"
        export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
    fi
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/log.txt"
}

# Unpack the data tarball into $work/data; sets $data to the folder it holds.
unpack_data() {
    mkdir -p "$work/data"
    tar xzf "$1" -C "$work/data"
    data=$(find "$work/data" -mindepth 1 -maxdepth 1 -type d | head -1)
    say "data: $data"
}

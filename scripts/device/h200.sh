#!/usr/bin/env bash
# The one prepared check on the GPU machine (no Swift there, nothing built there): unpack the bundle made here by
# `scripts/bundle.sh`, probe the machine, compare every kernel with the CPU's in fp32 and bf16, and measure BERT-large
# pre-training steps beside PyTorch on the same GPU in the same run. Everything goes under $OUT (default ./out/h200),
# each phase under its own time limit, so one hung phase costs only its own minutes.
#   scripts/device/h200.sh [path/to/bert-bundle.tar.xz]     (default .build-bundle/bert-bundle.tar.xz)
set -uo pipefail
archive=${1:-.build-bundle/bert-bundle.tar.xz}
OUT=${OUT:-out/h200}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/phases.txt"; }
# phase NAME SECONDS COMMAND...: runs COMMAND with a limit, stdout and stderr to $OUT/NAME.txt, the status to phases.txt.
phase() {
  local name=$1 limit=$2; shift 2
  local start=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local status=$?
  log "$name: exit $status in $(( $(date +%s) - start )) s"
  return $status
}

python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$archive" "$OUT" || exit 1
bert="$OUT/bert-bundle/bert"
# NVRTC, cuBLASLt and NCCL come from the CUDA 13 wheels PyTorch brought (libcuda from the driver).
nvlibs=$(python3 -c 'import nvidia, os
dirs = {d for root in nvidia.__path__ for d, _, files in os.walk(root)
        if any(f.startswith(("libnvrtc.so", "libcublasLt.so", "libnccl.so")) for f in files)}
print(":".join(sorted(dirs)))' 2>/dev/null)
export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

phase probe 60 bash -c "nvidia-smi; echo; ldconfig -p | grep -E 'libcuda|libcublasLt|libnvrtc|libnccl'; echo LD_LIBRARY_PATH=\$LD_LIBRARY_PATH; echo; \
  python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())'; echo; \
  LD_LIBRARY_PATH=$OUT/bert-bundle/lib ldd $OUT/bert-bundle/bert.bin"
# Every kernel on the GPU against the CPU's (fp32: 1e-5, 5e-5 with a GEMM inside; bf16: 2e-2); dropout masks included.
phase check-fp32 120 "$bert" check-device --device cuda --precision fp32
phase check-bf16 120 "$bert" check-device --device cuda --precision bf16
# Throughput: BERT-large phase 1 (seq 128) and phase 2 (seq 512), bf16, LAMB; then PyTorch, bf16 + SDPA, eager and
# torch.compile, same batches.
phase ours-large-128 120 "$bert" bench --model bert-large --mode train --optimizer lamb --device cuda --precision bf16 \
  --batch 64 --seq-len 128 --steps 20 --warmup 5
phase ours-large-512 120 "$bert" bench --model bert-large --mode train --optimizer lamb --device cuda --precision bf16 \
  --batch 16 --seq-len 512 --steps 10 --warmup 3
phase torch-large-128 180 python3 bench/gpu_torch_bench.py --model bert-large --seq-len 128 --batch 64 --steps 20 --warmup 5
phase torch-large-512 150 python3 bench/gpu_torch_bench.py --model bert-large --seq-len 512 --batch 16 --steps 10 --warmup 3
log "done; results in $OUT"

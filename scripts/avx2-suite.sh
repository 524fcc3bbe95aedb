#!/bin/sh
# The test suite as an AVX2-only CPU (an AMD EPYC before Zen 4) runs it, on an AVX-512 machine: our 8-lane kernels
# (BERT_AVX512=0), OpenBLAS's Haswell kernels (the ones its Zen targets use) as the default GEMM there, and oneDNN
# held to its AVX2 kernels for the tests that call it. `BERT_GEMM=onednn scripts/avx2-suite.sh` runs oneDNN's AVX2
# kernels as the GEMM instead. Extra arguments go to `swift test` (e.g. --filter BatchTrimming).
set -eu
cd "$(dirname "$0")/.."
export BERT_AVX512=0 OPENBLAS_CORETYPE=Haswell DNNL_MAX_CPU_ISA=AVX2 BERT_GEMM="${BERT_GEMM:-openblas}"
exec swift test "$@"

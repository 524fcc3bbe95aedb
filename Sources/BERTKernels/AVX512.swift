import CAVX512Kernels

/// Whether the 16-lane AVX-512 kernels of `CAVX512Kernels` run in place of their 8-lane Swift twins: the CPU and the
/// OS support AVX-512 (F, DQ, BW, VL) and the environment does not set BERT_AVX512=0. Either path gives the same bits.
public enum AVX512 {
    public static let available = ak_avx512_available() != 0
}

// C types of the CUDA libraries that Swift cannot spell itself, declared here so that no CUDA header is needed at
// build time: ncclCommInitRank takes NCCL's unique id, a 128-byte struct, by value.
typedef struct { char internal[128]; } bert_nccl_unique_id;

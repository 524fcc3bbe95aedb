// HDF5 1.10 (Debian's libhdf5-dev, serial). The native type ids and property-list classes are macros over
// H5open() + globals that Swift cannot import: each gets a static inline accessor here.
#include <hdf5.h>
// zlib: shard chunks are deflated on several threads, then stored with H5Dwrite_chunk (HDF5 itself is serial).
#include <zlib.h>

static inline hid_t swh5_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t swh5_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t swh5_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t swh5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t swh5_p_default(void) { return H5P_DEFAULT; }
static inline unsigned swh5_f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned swh5_f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hid_t swh5_p_file_access(void) { return H5P_FILE_ACCESS; }
/// Turns off HDF5's automatic error-stack printing for the calling thread (the stack is per thread in a
/// thread-safe build); callers report their own one-line errors instead.
static inline void swh5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

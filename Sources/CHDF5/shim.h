// HDF5 1.10 (Debian's libhdf5-dev, serial). The native type ids and property-list classes are macros over
// H5open() + globals that Swift cannot import: each gets a static inline accessor here.
#include <hdf5.h>

static inline hid_t swh5_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t swh5_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t swh5_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t swh5_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t swh5_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t swh5_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t swh5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t swh5_p_default(void) { return H5P_DEFAULT; }
static inline hid_t swh5_s_all(void) { return H5S_ALL; }
static inline unsigned swh5_f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned swh5_f_acc_rdonly(void) { return H5F_ACC_RDONLY; }

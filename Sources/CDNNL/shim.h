// oneDNN's C API as shipped by Debian's libdnnl-dev (2.6, built on OpenMP).
#include <dnnl.h>

// From OpenMP (libgomp, which libdnnl links). gcc's omp.h is not on clang's search path, hence the declaration.
// Sets the calling thread's team size for the parallel regions it starts: 1 keeps a oneDNN call on that thread.
extern void omp_set_num_threads(int count);

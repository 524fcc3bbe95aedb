// Open MPI 4.1 (Debian's libopenmpi-dev). The predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are
// macros over casts of addresses of globals, and MPI_IN_PLACE / MPI_STATUS_IGNORE are casts of integers:
// Swift imports none of them, so each gets a static inline accessor here.
#include <mpi.h>
#include <stdlib.h>

static inline MPI_Comm swmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm swmpi_comm_null(void) { return MPI_COMM_NULL; }

static inline MPI_Datatype swmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype swmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype swmpi_int(void) { return MPI_INT; }
static inline MPI_Datatype swmpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype swmpi_byte(void) { return MPI_BYTE; }

static inline MPI_Op swmpi_sum(void) { return MPI_SUM; }
static inline MPI_Op swmpi_max(void) { return MPI_MAX; }
static inline MPI_Op swmpi_min(void) { return MPI_MIN; }

static inline void *swmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *swmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }

static inline MPI_Errhandler swmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Errhandler swmpi_errors_are_fatal(void) { return MPI_ERRORS_ARE_FATAL; }

static inline int swmpi_success(void) { return MPI_SUCCESS; }
static inline int swmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int swmpi_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int swmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int swmpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int swmpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }

/// glibc's on_exit: like atexit, but the handler sees the status passed to exit(), so a process that exits
/// non-zero can abort the MPI job instead of finalizing (MPI_Finalize would wait for ranks that never come).
typedef void (*swmpi_exit_handler)(int status, void *arg);
static inline int swmpi_on_exit(swmpi_exit_handler handler) { return on_exit(handler, NULL); }

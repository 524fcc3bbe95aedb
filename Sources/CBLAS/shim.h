// CBLAS as shipped by Debian's libopenblas-dev (pthread variant).
#include <cblas.h>

// libbz2 (Debian's libbz2-dev, which ships no pkg-config file: the module map links it by name). Wikipedia's
// dumps are bzip2, multistream or not; `bert prepare` and `bert wikiextract` read them without unpacking.
#include <bzlib.h>

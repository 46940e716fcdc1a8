/* libtrellis.so is made of the layer archives linked whole; this translation unit only gives the
 * shared library target a source of its own. The exported symbols are the TRELLIS_EXPORT ones. */
#include "trellis/trellis.h"


#include <stdlib.h>  /* defines __GLIBC__ where the C library is glibc */
#include "callocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
int cloudtap_keep_freed_memory(int trim_threshold, int top_pad) {
    return mallopt(M_TRIM_THRESHOLD, trim_threshold) && mallopt(M_TOP_PAD, top_pad);
}
#else
int cloudtap_keep_freed_memory(int trim_threshold, int top_pad) { (void)trim_threshold; (void)top_pad; return 0; }
#endif

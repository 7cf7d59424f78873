#ifndef CLOUDTAP_CALLOCATOR_H
#define CLOUDTAP_CALLOCATOR_H

/// Sets glibc malloc's trim threshold: free memory at the top of a heap is returned to the
/// kernel only once more than `bytes` of it pile up. Returns 1 on success, 0 where the C
/// library has no such setting.
int cloudtap_set_trim_threshold(int bytes);

#endif

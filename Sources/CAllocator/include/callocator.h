#ifndef CLOUDTAP_CALLOCATOR_H
#define CLOUDTAP_CALLOCATOR_H

/// Tunes glibc malloc for a long-running server: free memory at the top of a heap goes back
/// to the kernel only once more than `trim_threshold` bytes of it pile up, and a heap grows by
/// `top_pad` bytes more than it needs at a time. Returns 1 when both were set, 0 where the C
/// library has no such settings.
int cloudtap_keep_freed_memory(int trim_threshold, int top_pad);

#endif

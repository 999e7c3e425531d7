//! Giving memory back after start-up.
//!
//! Loading the ledger allocates and frees a great deal: every row read, the district saved by
//! the demo or a test, the broker's accounts. With glibc's allocator what is freed among what
//! lives on (each device's id, allocated between the rows) is kept by the process, not
//! returned: with a million devices that was about 130 MiB, as much again as the engine's
//! own table of them. `malloc_trim` hands the free pages back to the system.
//!
//! This is the workspace's one use of `unsafe`: a call into the C library with no arguments
//! that point anywhere.

/// Returns the allocator's free memory to the system, where the C library can (glibc on
/// Linux); elsewhere does nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` takes a plain integer (the padding to keep, none here) and only
    // releases pages that hold no live allocation; it is safe to call from any thread at any
    // time.
    unsafe {
        libc::malloc_trim(0);
    }
}

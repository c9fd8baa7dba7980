//! Freed memory handed back to the OS between bursts of requests.
//!
//! The `sluice` binary's allocator is mimalloc, told never to purge freed memory (capture
//! frees and re-allocates large batches all the time, and fresh pages cost it ~30%). A server
//! that lives for days must not keep the peak of its busiest minute, so serving turns purging
//! back on and forces one once a burst is over. In a binary whose allocator is not mimalloc
//! both calls only touch mimalloc's own unused state.

/// `mi_option_purge_delay` in mimalloc's option enum (the -sys crate does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's own default: memory freed and reused within a second is kept, so a running
/// capture still reuses its batches.
const PURGE_DELAY_MS: std::os::raw::c_long = 1000;

/// Lets mimalloc return freed memory again (the CLI turned that off for capture).
pub(crate) fn allow_purging() {
    // SAFETY: sets one of mimalloc's options, an atomic store read on its purge paths.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// Frees this thread's cached pages and purges every arena's free memory now.
pub(crate) fn give_back() {
    // SAFETY: mi_collect takes no pointers; `force` also purges the arenas shared by all threads.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

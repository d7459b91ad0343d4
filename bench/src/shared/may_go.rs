//! The one way the may programs start a coroutine.

/// Starts `f` as a may coroutine.
///
/// `may::coroutine::spawn` is an `unsafe fn` because a may coroutine may be
/// resumed on a different OS thread after any blocking call, and because it
/// runs on a small fixed stack with no overflow check that Rust can rely
/// on. Every closure handed to this function in these programs owns only
/// `Send` values (channels, `Arc`s, integers), reads no thread-local, holds
/// no std lock guard or other thread-bound value across a blocking call, and
/// recurses no deeper than a few frames.
pub fn go<F, T>(f: F) -> may::coroutine::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: the closures passed here (see the doc comment above) hold only
    // `Send` data, touch no thread-locals and keep nothing thread-bound across
    // a park, so resuming them on another worker thread is sound; their
    // frames are shallow, far below may's default stack size.
    unsafe { may::coroutine::spawn(f) }
}

/// Makes a panic anywhere (a failed check, a failed stack allocation inside
/// may) end the process with status 101 after printing its message. may
/// catches a coroutine's panic and keeps running, so without this a failed
/// coroutine would leave its parent waiting forever.
pub fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::exit(101);
    }));
}

//! Synchronisation primitives that park goroutines (never their worker
//! thread) and block plain threads: Go's `sync` package.
//!
//! | Go                 | goro                         |
//! |--------------------|------------------------------|
//! | `sync.WaitGroup`   | [`WaitGroup`]                |

mod waitgroup;

pub use waitgroup::WaitGroup;

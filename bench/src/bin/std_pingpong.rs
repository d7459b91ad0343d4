//! pingpong on OS threads: the main thread and one echo thread bounce a
//! value over two `crossbeam_channel::bounded(0)` (rendezvous) channels,
//! 1,000,000 round trips. Every hand-off is a futex wake and a sleep of an
//! OS thread. Counterpart of `pingpong.rs` and `bench/go/pingpong/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use crossbeam_channel::bounded;

const ROUNDS: u64 = 1_000_000;

fn main() {
    let (ping_tx, ping_rx) = bounded::<u64>(0);
    let (pong_tx, pong_rx) = bounded::<u64>(0);

    let echo = std::thread::spawn(move || {
        let mut count = 0u64;
        for v in &ping_rx {
            pong_tx
                .send(v + 1)
                .expect("pingpong: main stopped listening");
            count += 1;
        }
        count
    });

    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..ROUNDS {
        ping_tx.send(i).expect("pingpong: echo thread vanished");
        let got = pong_rx.recv().expect("pingpong: echo thread vanished");
        assert_eq!(got, i + 1, "pingpong: sent {i}, got back {got}");
        sum += got;
    }
    drop(ping_tx);
    let count = echo.join().expect("pingpong: echo thread panicked");
    let elapsed = start.elapsed();

    assert_eq!(
        count, ROUNDS,
        "pingpong: echo saw the wrong number of values"
    );
    assert_eq!(sum, ROUNDS * (ROUNDS + 1) / 2, "pingpong: wrong sum");
    println!("RESULT pingpong {:.3} ms", elapsed.as_secs_f64() * 1e3);
}

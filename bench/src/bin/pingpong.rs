//! pingpong: two goroutines (main and one echo goroutine) bounce a value over
//! two unbuffered channels, 1,000,000 round trips. Measures the latency of a
//! rendezvous hand-off: park, wake, switch.
//! Counterpart of `bench/go/pingpong/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::chan;

const ROUNDS: u64 = 1_000_000;

#[goro::main]
fn main() {
    let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u64>(0);

    let echo = goro::go(move || {
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
        ping_tx.send(i).expect("pingpong: echo goroutine vanished");
        let got = pong_rx.recv().expect("pingpong: echo goroutine vanished");
        assert_eq!(got, i + 1, "pingpong: sent {i}, got back {got}");
        sum += got;
    }
    ping_tx.close();
    let count = echo.join().expect("pingpong: echo goroutine panicked");
    let elapsed = start.elapsed();

    assert_eq!(
        count, ROUNDS,
        "pingpong: echo goroutine saw the wrong number of values"
    );
    assert_eq!(sum, ROUNDS * (ROUNDS + 1) / 2, "pingpong: wrong sum");
    println!("RESULT pingpong {:.3} ms", elapsed.as_secs_f64() * 1e3);
}

//! `merge` and `fan_out`: nothing lost, per-input order kept, and a
//! dropped output stops the forwarders and their producers (leak check).

use goro::chan;
use goro_patterns::{fan_out, merge};

#[goro::test]
fn merge_keeps_every_value_and_per_input_order() {
    let inputs: Vec<_> = (0..8u64)
        .map(|k| {
            let (tx, rx) = chan::bounded(k as usize % 3);
            let _ = goro::go(move || (0..500).for_each(|i| tx.send(k * 1000 + i).unwrap()));
            rx
        })
        .collect();
    let out: Vec<u64> = merge(inputs).iter().collect();
    assert_eq!(out.len(), 8 * 500);
    for k in 0..8 {
        let mine: Vec<u64> = out.iter().copied().filter(|v| v / 1000 == k).collect();
        assert_eq!(mine, (0..500).map(|i| k * 1000 + i).collect::<Vec<_>>());
    }
}

#[goro::test]
fn merge_of_nothing_is_closed() {
    let out = merge(Vec::<chan::Receiver<u8>>::new());
    assert!(out.recv().is_err());
}

/// Endless producers: dropping the merged output ends everything.
#[goro::test]
fn dropping_the_merged_output_stops_everything() {
    let inputs: Vec<_> = (0..4)
        .map(|_| {
            let (tx, rx) = chan::bounded(0);
            let _ = goro::go(move || while tx.send(1u8).is_ok() {});
            rx
        })
        .collect();
    let out = merge(inputs);
    for _ in 0..100 {
        out.recv().unwrap();
    }
    drop(out);
    goro::testing::verify_none();
}

#[goro::test]
fn fan_out_applies_f_to_each_value_once() {
    let (tx, rx) = chan::bounded(0);
    let _ = goro::go(move || (0..10_000u64).for_each(|i| tx.send(i).unwrap()));
    let mut out: Vec<u64> = fan_out(rx, 6, |x| x * 3).iter().collect();
    out.sort_unstable();
    assert_eq!(out, (0..10_000).map(|x| x * 3).collect::<Vec<_>>());
}

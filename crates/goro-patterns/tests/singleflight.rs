//! `singleflight::Group`: concurrent calls for one key run once and share
//! the result; later calls run again; a leader's panic reaches followers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::chan;
use goro_patterns::singleflight::Group;

/// A leader held at a gate, 49 followers arrive: f runs once, all 50 get
/// its value, 49 of them marked shared.
#[goro::test]
fn concurrent_calls_are_deduplicated() {
    let g: Arc<Group<String, u64>> = Arc::new(Group::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let (inside_tx, inside) = chan::bounded::<()>(1);
    let (gate_tx, gate) = chan::bounded::<()>(0);
    let leader = {
        let (g, calls) = (g.clone(), calls.clone());
        goro::go(move || {
            g.run("k".into(), || {
                calls.fetch_add(1, Ordering::SeqCst);
                inside_tx.send(()).unwrap();
                let _ = gate.recv(); // closed by the test
                99
            })
        })
    };
    inside.recv().unwrap();
    let arrived = Arc::new(AtomicUsize::new(0));
    let followers: Vec<_> = (0..49)
        .map(|_| {
            let (g, calls, arrived) = (g.clone(), calls.clone(), arrived.clone());
            goro::go(move || {
                arrived.fetch_add(1, Ordering::SeqCst);
                g.run("k".into(), || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    0
                })
            })
        })
        .collect();
    while arrived.load(Ordering::SeqCst) < 49 {
        goro::yield_now();
    }
    goro::time::sleep(Duration::from_millis(100)); // let them reach the map
    assert_eq!(g.in_flight(), 1);
    drop(gate_tx);
    assert_eq!(leader.join().unwrap(), (99, false));
    for f in followers {
        assert_eq!(f.join().unwrap(), (99, true));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(g.in_flight(), 0);
    // Nothing is cached: the next call runs.
    assert_eq!(g.run("k".into(), || 5), (5, false));
}

/// Different keys do not wait for each other.
#[goro::test]
fn different_keys_run_independently() {
    let g: Arc<Group<u32, u32>> = Arc::new(Group::new());
    let hs: Vec<_> = (0..10)
        .map(|k| {
            let g = g.clone();
            goro::go(move || g.run(k, || k * 2))
        })
        .collect();
    for (k, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), (k as u32 * 2, false));
    }
}

/// The leader's panic goes on in the leader and reaches its followers.
#[goro::test]
fn a_leader_panic_reaches_followers() {
    let g: Arc<Group<&'static str, u8>> = Arc::new(Group::new());
    let (inside_tx, inside) = chan::bounded::<()>(1);
    let (gate_tx, gate) = chan::bounded::<()>(0);
    let leader = {
        let g = g.clone();
        goro::go(move || {
            catch_unwind(AssertUnwindSafe(|| {
                g.run("k", || {
                    inside_tx.send(()).unwrap();
                    let _ = gate.recv();
                    panic!("leader failed")
                })
            }))
            .is_err()
        })
    };
    inside.recv().unwrap();
    let follower = {
        let g = g.clone();
        goro::go(move || g.run("k", || 1))
    };
    goro::time::sleep(Duration::from_millis(100));
    drop(gate_tx);
    assert!(leader.join().unwrap());
    let err = follower.join().unwrap_err().into_panic();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("leader failed"), "{msg}");
    // The key is free again.
    assert_eq!(g.run("k", || 2), (2, false));
}

//! `gateway`: the API gateway demo.
//!
//! ```text
//! gateway                          backends + gateway + a 10,000-connection load test, then a report
//! gateway --listen 127.0.0.1:8080  backends + gateway only, until Ctrl-C (for wrk, curl, a browser)
//! ```
//!
//! Run `gateway --help` for every flag.

#![forbid(unsafe_code)]

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway::loadgen::{self, LoadConfig};
use gateway::sys::{self, fmt_count};
use gateway::{Stack, StackConfig};
use goro::signal::Signal;

/// Everything the command line can set.
#[derive(Debug)]
struct Options {
    /// Run only the gateway and backends, on this address.
    listen: Option<String>,
    /// Run only the load generator (the child process).
    loadgen: bool,
    /// The load generator's target.
    target: Option<String>,
    /// The server's pid, for the load generator's memory samples.
    server_pid: Option<u32>,
    /// Concurrent connections of the load test.
    connections: usize,
    /// Length of the load test.
    duration: Duration,
    /// Paths the load generator requests.
    paths: Vec<String>,
    /// The backends and gateway.
    stack: StackConfig,
}

/// The help text.
const HELP: &str = "\
gateway: an API gateway on goro-http, with in-process backends and a load generator

USAGE:
    gateway [FLAGS]                    run everything: backends, gateway, load test, report
    gateway --listen ADDR [FLAGS]      run only the backends and the gateway on ADDR, until Ctrl-C

FLAGS:
    --connections N     concurrent keep-alive connections of the load test [default: 10000]
    --duration SECS     length of the load test, after the connections are open [default: 10]
    --paths P1,P2,..    paths the load test requests in turn
                        [default: /users/42,/orders/7,/inventory/3,/dashboard]
    --latency-ms MS     mean simulated backend latency (uniform, 0.5x to 1.5x) [default: 1]
    --error-rate F      fraction of backend answers that fail with 500 (0.0 to 1.0) [default: 0]
    --deadline-ms MS    the gateway's per-request deadline (504 beyond) [default: 5000]
    --backend-limit N   backend calls in flight per backend, at most [default: 256]
    --no-disconnect-watch
                        do not watch client connections while their request runs
    --listen ADDR       serve on ADDR and run no load test (for wrk, curl, a browser)
    -h, --help          this text

The gateway serves /users/*, /orders/*, /inventory/* (proxied), /dashboard (fan-out),
and /debug/ (live runtime page), /debug/goroutines, /debug/stats, /metrics.
";

/// Parses the command line; prints the help and exits on `--help` or a
/// mistake.
fn parse_args() -> Options {
    let mut o = Options {
        listen: None,
        loadgen: false,
        target: None,
        server_pid: None,
        connections: 10_000,
        duration: Duration::from_secs(10),
        paths: loadgen::default_paths(),
        stack: StackConfig::default(),
    };
    let mut args = std::env::args().skip(1);
    fn fail(msg: &str) -> ! {
        eprintln!("gateway: {msg}\n\n{HELP}");
        std::process::exit(2)
    }
    fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        let v = v.unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        v.parse()
            .unwrap_or_else(|_| fail(&format!("{flag}: cannot read {v:?}")))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0)
            }
            "--listen" => o.listen = Some(value(&a, args.next())),
            "--loadgen" => o.loadgen = true,
            "--target" => o.target = Some(value(&a, args.next())),
            "--server-pid" => o.server_pid = Some(value(&a, args.next())),
            "--connections" => o.connections = value(&a, args.next()),
            "--duration" => {
                let secs: f64 = value(&a, args.next());
                if !(secs > 0.0 && secs < 1e6) {
                    fail("--duration must be a positive number of seconds");
                }
                o.duration = Duration::from_secs_f64(secs);
            }
            "--paths" => {
                let v: String = value(&a, args.next());
                o.paths = v.split(',').map(str::to_string).collect();
                if o.paths.iter().any(|p| !p.starts_with('/')) {
                    fail("--paths: every path starts with /");
                }
            }
            "--latency-ms" => o.stack.latency = Duration::from_millis(value(&a, args.next())),
            "--error-rate" => {
                o.stack.error_rate = value(&a, args.next());
                if !(0.0..=1.0).contains(&o.stack.error_rate) {
                    fail("--error-rate is between 0 and 1");
                }
            }
            "--deadline-ms" => o.stack.deadline = Duration::from_millis(value(&a, args.next())),
            "--backend-limit" => o.stack.upstream_limit = value(&a, args.next()),
            "--no-disconnect-watch" => o.stack.detect_disconnect = false,
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    o
}

/// Prints the open-file limit (goro's runtime has already raised the soft
/// limit to the hard one).
fn print_limits(who: &str) {
    if let Some((soft, hard)) = sys::nofile_limit() {
        println!("{who}: open-file limit {soft} (hard {hard})");
    }
}

#[goro::main]
fn main() {
    let o = parse_args();
    if o.loadgen {
        run_loadgen(o);
    } else if let Some(addr) = o.listen.clone() {
        run_listen(&o, &addr);
    } else {
        run_demo(o);
    }
}

/// `--loadgen`: the load generator alone (the demo's child process).
fn run_loadgen(o: Options) {
    let Some(target) = o.target.as_deref() else {
        eprintln!("gateway --loadgen needs --target ADDR");
        std::process::exit(2)
    };
    let target = match goro::net::lookup_host(target.to_string()) {
        Ok(a) if !a.is_empty() => a[0],
        _ => {
            eprintln!("gateway --loadgen: cannot resolve {target}");
            std::process::exit(2)
        }
    };
    let stalls = gateway::count_stall_reports();
    // A Ctrl-C in the terminal reaches this process and the gateway, which
    // then sends one more SIGINT: keep receiving them (and dropping the
    // repeats) so that the second one does not kill the report.
    let _repeats = goro::signal::notify(&[Signal::Interrupt, Signal::Terminate]);
    let connections = sys::connections_that_fit(o.connections, 64, "load generator");
    let report = loadgen::run(LoadConfig {
        connections,
        duration: o.duration,
        paths: o.paths,
        server_pid: o.server_pid,
        progress: true,
        // Ctrl-C ends the load early, with a report of what ran.
        stop: Some(goro::signal::shutdown_context()),
        ..LoadConfig::new(target)
    });
    print!("{}", report.render());
    report_stalls("load generator", &stalls);
}

/// Says how many stuck-worker reports goro made, if any.
fn report_stalls(who: &str, stalls: &std::sync::atomic::AtomicU64) {
    let n = stalls.load(std::sync::atomic::Ordering::Relaxed);
    if n > 0 {
        println!(
            "{who}: goro reported {n} goroutine(s) holding a worker for 10 ms or more without parking \
             (on a busy machine usually the OS preempting the worker thread)"
        );
    }
}

/// `--listen ADDR`: the gateway and backends until SIGINT or SIGTERM.
fn run_listen(o: &Options, addr: &str) {
    print_limits("gateway");
    let stack = StackConfig {
        listen: addr.to_string(),
        ..o.stack.clone()
    };
    let stack = Stack::start(&stack).unwrap_or_else(|e| {
        eprintln!("gateway: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    print_banner(&stack);
    println!("Ctrl-C (SIGINT) or SIGTERM shuts it down gracefully.");
    let stop = goro::signal::shutdown_context();
    let _ = stop.done().recv();
    shut_down(&stack);
}

/// The routes and addresses.
fn print_banner(stack: &Stack) {
    let a = stack.gateway.addr();
    println!("gateway listening on http://{a}/");
    for b in &stack.backends {
        println!("  /{}/*  -> {} backend on {}", b.name(), b.name(), b.addr());
    }
    println!("  /dashboard  -> fan-out to every backend");
    println!("  debug: http://{a}/debug/  (/debug/goroutines?grouped=1, /debug/stats, /metrics)");
}

/// Graceful shutdown, with what the gateway did.
fn shut_down(stack: &Stack) {
    let before = stack.gateway.stats();
    println!(
        "\nshutting down: {} request(s) in flight, draining (at most 10 s)...",
        before.in_flight
    );
    match stack.shutdown(Duration::from_secs(10)) {
        Ok(()) => println!("drained: every accepted request was answered"),
        Err(e) => println!("{e}"),
    }
    let s = stack.gateway.stats();
    println!(
        "gateway: {} requests ({} fan-outs), {} backend retries, {} answered 502, {} answered 504",
        fmt_count(s.requests),
        fmt_count(s.fanouts),
        fmt_count(s.retries),
        fmt_count(s.bad_gateway),
        fmt_count(s.timeouts)
    );
    for b in &stack.backends {
        let st = b.stats();
        println!(
            "  {:<10} {} requests, {} simulated failures, at most {} at once",
            b.name(),
            fmt_count(st.requests),
            fmt_count(st.errors),
            st.peak_in_flight
        );
    }
}

/// The default: everything, with the load generator as a child process.
fn run_demo(o: Options) {
    let stalls = gateway::count_stall_reports();
    print_limits("gateway");
    // The gateway's process holds the client connections plus both ends of
    // every pooled backend connection.
    let reserve = 2 * gateway::SERVICES.len() * o.stack.upstream_limit + 128;
    let connections = sys::connections_that_fit(o.connections, reserve, "gateway");
    let stack = Stack::start(&o.stack).unwrap_or_else(|e| {
        eprintln!("gateway: cannot start: {e}");
        std::process::exit(1)
    });
    print_banner(&stack);
    println!(
        "backends: latency {:?} (±50%), error rate {}; gateway: deadline {:?}, {} calls per backend",
        o.stack.latency, o.stack.error_rate, o.stack.deadline, o.stack.upstream_limit
    );
    println!(
        "load test: {} keep-alive connections for {:.0} s from a child process, paths {}",
        fmt_count(connections as u64),
        o.duration.as_secs_f64(),
        o.paths.join(",")
    );

    let exe = std::env::current_exe().expect("the path of this program");
    let child = Command::new(exe)
        .arg("--loadgen")
        .args(["--target", &stack.gateway.addr().to_string()])
        .args(["--connections", &connections.to_string()])
        .args(["--duration", &o.duration.as_secs_f64().to_string()])
        .args(["--paths", &o.paths.join(",")])
        .args(["--server-pid", &std::process::id().to_string()])
        .spawn();
    let child = match child {
        Ok(c) => Arc::new(Mutex::new(c)),
        Err(e) => {
            eprintln!("gateway: cannot start the load generator: {e}");
            let _ = stack.shutdown(Duration::from_secs(5));
            std::process::exit(1)
        }
    };
    let exited = watch_child(child.clone());
    let stop = goro::signal::shutdown_context();
    let status = goro::select! {
        recv(exited) -> s => s.ok().flatten(),
        recv(stop.done()) -> _ => {
            println!("\nsignal received: stopping the load generator");
            // It reports what ran when it gets SIGINT (a Ctrl-C in the
            // terminal sends it to both processes; a SIGTERM to this one
            // does not); killed if it does not end in time.
            let pid = lock(&child).id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            goro::select! {
                recv(exited) -> s => s.ok().flatten(),
                default(Duration::from_secs(15)) => {
                    let _ = lock(&child).kill();
                    exited.recv().ok().flatten()
                },
            }
        },
    };
    match status {
        Some(0) => {}
        Some(code) => println!("load generator exited with status {code}"),
        None => println!("load generator ended by a signal"),
    }
    shut_down(&stack);
    report_stalls("gateway", &stalls);
}

/// Locks a std mutex, ignoring poisoning.
fn lock(m: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A channel that receives the child's exit code (`None`: killed by a
/// signal) when it exits.
fn watch_child(child: Arc<Mutex<Child>>) -> goro::chan::Receiver<Option<i32>> {
    let (tx, rx) = goro::chan::bounded(1);
    drop(goro::go(move || loop {
        match lock(&child).try_wait() {
            Ok(Some(st)) => {
                let _ = tx.send(st.code());
                return;
            }
            Ok(None) => {}
            Err(_) => {
                let _ = tx.send(None);
                return;
            }
        }
        goro::time::sleep(Duration::from_millis(50));
    }));
    rx
}

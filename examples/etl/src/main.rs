//! An ETL pipeline on `goro_patterns::Pipeline`: a CSV file of sales →
//! parse → transform → aggregate → a CSV report, with live per-stage
//! statistics that show where the backpressure is.
//!
//! ```text
//! cargo run -p etl --release -- sales.csv report.csv   # your own file
//! cargo run -p etl --release -- --generate 500000 sales.csv
//! cargo run -p etl --release -- --self-test           # generate, run, check, exit 0
//! ```
//!
//! Input rows are `date,region,product,quantity,unit_price` after a header
//! line. The report has one row per region: orders, units, revenue.
//!
//! Stages (each its own goroutines, connected by bounded channels):
//!
//! ```text
//! source (lines) ─► parse ×2 ─► transform ×4 (ordered) ─► sink: aggregate
//! ```
//!
//! `transform` does deliberate CPU work per row (a stand-in for enrichment
//! or validation), so it is the bottleneck: the statistics printed every
//! 250 ms show `parse` and the source waiting on output (backpressure),
//! `transform` busy, and the sink waiting on input.
//!
//! Bad rows: by default a malformed row is counted and skipped; with
//! `--strict` the first one fails the run, which cancels every stage and
//! reports the row's line number. The self-test checks both, and checks
//! the report against a plain sequential computation.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan;
use goro_patterns::pipeline::{self, Pipeline};

/// Regions used by the generator.
const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
/// Products used by the generator.
const PRODUCTS: [&str; 4] = ["widget", "gadget", "gizmo", "doohickey"];

/// One parsed row.
#[derive(Debug, Clone)]
struct Sale {
    /// Region, lower case.
    region: String,
    /// Units sold.
    qty: u64,
    /// Price per unit, in cents.
    price_cents: u64,
}

/// One transformed row: what the aggregate needs.
#[derive(Debug, Clone)]
struct Line {
    /// Region, upper case (the "transform").
    region: String,
    /// Units.
    qty: u64,
    /// Revenue in cents.
    revenue_cents: u64,
}

/// Per-region totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    /// Rows.
    orders: u64,
    /// Units.
    units: u64,
    /// Cents.
    revenue_cents: u64,
}

/// Parses `"12.34"` into cents.
fn parse_cents(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<2}");
    if frac.len() != 2 {
        return None;
    }
    Some(whole.parse::<u64>().ok()? * 100 + frac.parse::<u64>().ok()?)
}

/// Parses one numbered line; `Ok(None)` for the header and blank lines.
fn parse(no: usize, line: &str) -> Result<Option<Sale>, String> {
    if no == 1 || line.trim().is_empty() {
        return Ok(None);
    }
    let f: Vec<&str> = line.split(',').collect();
    let bad = || format!("line {no}: malformed row {line:?}");
    if f.len() != 5 {
        return Err(bad());
    }
    Ok(Some(Sale {
        region: f[1].trim().to_lowercase(),
        qty: f[3].trim().parse().map_err(|_| bad())?,
        price_cents: parse_cents(f[4].trim()).ok_or_else(bad)?,
    }))
}

/// The transform: upper-cases the region, computes revenue, and burns some
/// CPU as enrichment would (a few hundred ns of hashing).
fn transform(s: Sale) -> Line {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..64 {
        for b in s.region.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    std::hint::black_box(h);
    Line {
        region: s.region.to_uppercase(),
        qty: s.qty,
        revenue_cents: s.qty * s.price_cents,
    }
}

/// Hands out `(line number, line)` pairs of a shared text, one per call.
struct LineIter {
    /// The text.
    text: Arc<String>,
    /// Byte offset of the next line.
    pos: usize,
}

impl LineIter {
    /// A closure for `map_while` yielding each line in turn.
    fn numbered(text: Arc<String>) -> impl FnMut(usize) -> Option<(usize, String)> + Send {
        let mut it = LineIter { text, pos: 0 };
        move |i| it.next_line().map(|l| (i + 1, l))
    }

    /// The next line, without its newline.
    fn next_line(&mut self) -> Option<String> {
        let rest = &self.text[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let end = rest.find('\n').unwrap_or(rest.len());
        self.pos += (end + 1).min(rest.len());
        Some(rest[..end].to_string())
    }
}

/// Runs the pipeline over `text`; skips bad rows unless `strict`. Prints
/// live statistics every 250 ms when `live`. Returns the totals and the
/// number of skipped rows.
fn run(
    text: Arc<String>,
    strict: bool,
    live: bool,
) -> Result<(BTreeMap<String, Totals>, u64), pipeline::Error<String>> {
    let skipped = Arc::new(AtomicU64::new(0));
    let sk = skipped.clone();
    // The source walks the text lazily (it owns an `Arc` of it).
    let lines = (0..).map_while(LineIter::numbered(text));
    let p = Pipeline::source(lines)
        .buffer(64)
        .filter_stage("parse", 2, move |(no, line): (usize, String)| {
            match parse(no, &line) {
                Ok(s) => Ok(s),
                Err(e) if strict => Err(e),
                Err(_) => {
                    sk.fetch_add(1, Ordering::Relaxed);
                    Ok(None)
                }
            }
        })
        .ordered_stage("transform", 4, |s| Ok(transform(s)));
    let stats = p.stats();
    let final_stats = stats.clone();
    // Live statistics until the run ends.
    let (stop_tx, stop) = chan::bounded::<()>(0);
    let printer = goro::go(move || {
        if !live {
            return;
        }
        let tick = goro::time::tick(Duration::from_millis(250));
        loop {
            goro::select! {
                recv(tick) -> _ => print!("--- live\n{stats}"),
                recv(stop) -> _ => return,
            }
        }
    });
    let r = p.fold(BTreeMap::new(), |mut acc: BTreeMap<String, Totals>, l| {
        let t = acc.entry(l.region).or_default();
        t.orders += 1;
        t.units += l.qty;
        t.revenue_cents += l.revenue_cents;
        Ok(acc)
    });
    drop(stop_tx);
    printer.join().expect("the stats printer does not panic");
    if live {
        print!("--- final\n{final_stats}");
    }
    Ok((r?, skipped.load(Ordering::Relaxed)))
}

/// The same computation without goroutines, to check against.
fn sequential(text: &str) -> BTreeMap<String, Totals> {
    let mut acc: BTreeMap<String, Totals> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if let Ok(Some(s)) = parse(i + 1, line) {
            let l = transform(s);
            let t = acc.entry(l.region).or_default();
            t.orders += 1;
            t.units += l.qty;
            t.revenue_cents += l.revenue_cents;
        }
    }
    acc
}

/// A CSV of `rows` sales; every `bad_every`-th row is malformed (0: none).
fn generate(rows: usize, bad_every: usize) -> String {
    let mut s = String::from("date,region,product,quantity,unit_price\n");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if bad_every > 0 && i % bad_every == bad_every - 1 {
            s.push_str("2026-01-01,north,widget\n");
            continue;
        }
        let _ = writeln!(
            s,
            "2026-{:02}-{:02},{},{},{},{}.{:02}",
            1 + x % 12,
            1 + (x >> 8) % 28,
            REGIONS[(x >> 16) as usize % REGIONS.len()],
            PRODUCTS[(x >> 24) as usize % PRODUCTS.len()],
            1 + (x >> 32) % 20,
            1 + (x >> 40) % 500,
            (x >> 50) % 100
        );
    }
    s
}

/// The report as CSV.
fn report(totals: &BTreeMap<String, Totals>) -> String {
    let mut s = String::from("region,orders,units,revenue\n");
    for (r, t) in totals {
        let _ = writeln!(
            s,
            "{r},{},{},{}.{:02}",
            t.orders,
            t.units,
            t.revenue_cents / 100,
            t.revenue_cents % 100
        );
    }
    s
}

/// Generates, runs lenient and strict, checks, prints a summary.
fn self_test() -> Result<(), String> {
    let rows = 200_000;
    // CPU-heavy work outside the pipeline goes to the blocking pool, so it
    // does not hold a goroutine worker.
    let text = Arc::new(goro::blocking(move || generate(rows, 1000)));
    let t = Instant::now();
    let (totals, skipped) = run(text.clone(), false, true).map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if skipped != (rows / 1000) as u64 {
        return Err(format!("skipped {skipped} rows, expected {}", rows / 1000));
    }
    let t2 = text.clone();
    if totals != goro::blocking(move || sequential(&t2)) {
        return Err("the pipeline's totals differ from the sequential ones".into());
    }
    print!("{}", report(&totals));
    println!("self-test: lenient run of {rows} rows ({skipped} bad, skipped) in {took:.2?}: report matches");

    // Strict: the first bad row (line 1001: header + 999 good rows + it)
    // fails the run and cancels every stage.
    let before = goro::num_goroutine();
    match run(text, true, false) {
        Err(pipeline::Error::Stage { stage, error }) if stage == "parse" => {
            if !error.starts_with("line ") {
                return Err(format!("unexpected error text: {error}"));
            }
            println!("self-test: strict run failed as expected: stage {stage}: {error}");
        }
        other => return Err(format!("strict run: expected a parse error, got {other:?}")),
    }
    let after = goro::num_goroutine();
    if after > before {
        return Err(format!(
            "goroutines left behind: {before} before, {after} after"
        ));
    }
    println!("self-test: ok");
    Ok(())
}

#[goro::main]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--self-test"] => self_test(),
        ["--generate", n, out] => n
            .parse()
            .map_err(|e| format!("{n}: {e}"))
            .and_then(|n| goro::fs::write(out, generate(n, 0)).map_err(|e| e.to_string())),
        [input, output] | ["--strict", input, output] => {
            let strict = args[0] == "--strict";
            (|| {
                let text = goro::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
                let (totals, skipped) =
                    run(Arc::new(text), strict, true).map_err(|e| e.to_string())?;
                goro::fs::write(output, report(&totals)).map_err(|e| format!("{output}: {e}"))?;
                println!(
                    "wrote {output} ({} regions, {skipped} bad rows skipped)",
                    totals.len()
                );
                Ok(())
            })()
        }
        _ => Err(
            "usage: etl [--strict] INPUT.csv OUTPUT.csv | --generate ROWS OUT.csv | --self-test"
                .into(),
        ),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etl: {e}");
            ExitCode::FAILURE
        }
    }
}

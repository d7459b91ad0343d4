//! `#[goro::main]` and `#[goro::test]`. Use them through the `goro` crate.

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// Splits a function item into (everything before the body, the body).
fn split_fn(item: TokenStream, attr: &str) -> Result<(Vec<TokenTree>, Group), TokenStream> {
    let mut toks: Vec<TokenTree> = item.into_iter().collect();
    let body = match toks.pop() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
        _ => {
            return Err(error(&format!(
                "#[goro::{attr}] must be placed on a function with a body"
            )))
        }
    };
    if !toks
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))
    {
        return Err(error(&format!(
            "#[goro::{attr}] must be placed on a function"
        )));
    }
    if toks
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async"))
    {
        return Err(error(&format!(
            "#[goro::{attr}] functions must not be async: goroutines block, they do not await"
        )));
    }
    Ok((toks, body))
}

fn error(msg: &str) -> TokenStream {
    format!("::core::compile_error!({msg:?});")
        .parse()
        .expect("valid tokens")
}

/// Wraps `body` as `call move || body)`, where `call` is a path and an open
/// parenthesis, possibly with leading arguments (`path(`, `path(3, `).
fn wrap(call: &str, body: Group) -> Group {
    let (path, lead) = call.split_once('(').expect("call has a parenthesis");
    let mut inner: TokenStream = path.parse().expect("valid path");
    let mut args: TokenStream = lead.parse().expect("valid arguments");
    args.extend([TokenTree::Ident(Ident::new("move", Span::call_site()))]);
    args.extend([
        TokenTree::Punct(Punct::new('|', Spacing::Joint)),
        TokenTree::Punct(Punct::new('|', Spacing::Alone)),
    ]);
    args.extend([TokenTree::Group(body)]);
    inner.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, args))]);
    Group::new(Delimiter::Brace, inner)
}

/// Runs `main`'s body as the main goroutine of the default runtime; when it
/// returns, the process exits (as in Go), whatever other goroutines are doing.
///
/// ```ignore
/// #[goro::main]
/// fn main() {
///     let h = goro::go(|| 1 + 1);
///     println!("{}", h.join().unwrap());
/// }
/// ```
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return error("#[goro::main] takes no arguments");
    }
    let (head, body) = match split_fn(item, "main") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut out: TokenStream = head.into_iter().collect();
    out.extend([TokenTree::Group(wrap("::goro::__private::run_main(", body))]);
    out
}

/// Runs a test's body as the main goroutine of a fresh runtime; when it
/// returns, checks that no goroutine is left behind (a leak fails the test,
/// listing the leaked goroutines).
///
/// Options, comma-separated:
///
/// * `allow_leaks` — skip the leak check;
/// * `virtual_time` — run on a virtual clock (`goro::testing::synctest`):
///   sleeps, timers and deadlines take no real time;
/// * `explore = N` — run the body under `N` seeded schedules
///   (`goro::testing::explore`; implies `virtual_time`); a failure names its
///   seed, and `GORO_SEED=<seed> cargo test <name>` replays it.
///
/// ```ignore
/// #[goro::test]
/// fn sends_and_receives() {
///     let (tx, rx) = goro::chan::bounded(0);
///     goro::go(move || tx.send(1).unwrap());
///     assert_eq!(rx.recv(), Ok(1));
/// }
///
/// #[goro::test(virtual_time)]
/// fn an_hour_in_a_blink() {
///     goro::time::sleep(std::time::Duration::from_secs(3600));
/// }
/// ```
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut leaks = true;
    let mut virtual_time = false;
    let mut explore: Option<u64> = None;
    let spec = attr.to_string();
    for opt in spec.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let opt: String = opt.chars().filter(|c| !c.is_whitespace()).collect();
        match opt.as_str() {
            "allow_leaks" => leaks = false,
            "virtual_time" => virtual_time = true,
            o if o.starts_with("explore=") => match o["explore=".len()..].trim_end_matches("u64").parse() {
                Ok(n) => explore = Some(n),
                Err(_) => return error(&format!("#[goro::test(explore = N)] needs a number of seeds, not `{o}`")),
            },
            other => {
                return error(&format!(
                    "#[goro::test] options are `allow_leaks`, `virtual_time` and `explore = N`, not `{other}`"
                ))
            }
        }
    }
    let runner = match (explore, virtual_time, leaks) {
        (Some(_), _, false) => {
            return error("#[goro::test(explore = N)] always checks for leaks: drop `allow_leaks`")
        }
        (Some(n), _, _) => format!("::goro::__private::run_test_explore({n}u64, "),
        (None, true, true) => "::goro::__private::run_test_virtual(".to_string(),
        (None, true, false) => "::goro::__private::run_test_virtual_allow_leaks(".to_string(),
        (None, false, true) => "::goro::__private::run_test(".to_string(),
        (None, false, false) => "::goro::__private::run_test_allow_leaks(".to_string(),
    };
    let (head, body) = match split_fn(item, "test") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut out: TokenStream = "#[::core::prelude::v1::test]"
        .parse()
        .expect("valid attribute");
    out.extend(head);
    out.extend([TokenTree::Group(wrap(&runner, body))]);
    out
}

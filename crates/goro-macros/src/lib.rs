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

/// Wraps `body` as `path(move || body)`.
fn wrap(path: &str, body: Group) -> Group {
    let mut inner: TokenStream = path.parse().expect("valid path");
    let mut args = TokenStream::new();
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
    out.extend([TokenTree::Group(wrap("::goro::__private::run_main", body))]);
    out
}

/// Runs a test's body as the main goroutine of a fresh runtime; when it
/// returns, checks that no goroutine is left behind (a leak fails the test,
/// listing the leaked goroutines). `#[goro::test(allow_leaks)]` skips that
/// check.
///
/// ```ignore
/// #[goro::test]
/// fn sends_and_receives() {
///     let (tx, rx) = goro::chan::bounded(0);
///     goro::go(move || tx.send(1).unwrap());
///     assert_eq!(rx.recv(), Ok(1));
/// }
/// ```
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let runner = match attr.to_string().trim() {
        "" => "::goro::__private::run_test",
        "allow_leaks" => "::goro::__private::run_test_allow_leaks",
        other => {
            return error(&format!(
                "#[goro::test] takes no arguments or `allow_leaks`, not `{other}`"
            ))
        }
    };
    let (head, body) = match split_fn(item, "test") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut out: TokenStream = "#[::core::prelude::v1::test]"
        .parse()
        .expect("valid attribute");
    out.extend(head);
    out.extend([TokenTree::Group(wrap(runner, body))]);
    out
}

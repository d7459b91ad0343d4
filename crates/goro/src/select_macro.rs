//! The `select!` macro (see `chan/select.rs` for the machinery).

/// Waits on several channel operations and runs exactly one of them, as Go's
/// `select` statement (syntax as crossbeam-channel's).
///
/// ```
/// use std::time::Duration;
/// use goro::chan;
///
/// let (tx, rx) = chan::bounded::<u32>(1);
/// let (done_tx, done) = chan::bounded::<()>(0);
/// tx.send(7).unwrap();
/// let got = goro::select! {
///     recv(rx) -> v => v.unwrap(),
///     recv(done) -> _ => 0,
///     recv(goro::time::after(Duration::from_secs(1))) -> _ => 1,
/// };
/// assert_eq!(got, 7);
/// drop(done_tx);
/// ```
///
/// # Arms
///
/// * `recv(rx) -> res => body` — `res: Result<T, RecvError>`.
/// * `send(tx, value) -> res => body` — `res: Result<(), SendError<T>>`;
///   `value` is evaluated only if this arm is chosen, so the same move-only
///   value may appear in several arms.
/// * `default => body` — runs if no other arm is ready now.
/// * `default(duration) => body` — runs if none becomes ready in time.
///
/// Channels may be given by value or by reference; they are borrowed. Bodies
/// are not closures: `break`, `continue`, `return` and `?` act on the
/// enclosing code. Bodies are blocks (comma optional) or expressions
/// (followed by a comma unless last).
///
/// # Fairness
///
/// When several arms are ready, one is chosen uniformly at random.
///
/// # Select safety
///
/// Exactly one arm runs; an arm that did not run received nothing and sent
/// nothing. An arm on [`chan::never()`](crate::chan::never) is never ready.
///
/// # Blocking
///
/// Parks a goroutine; blocks a plain thread. Without arms and `default`, it
/// blocks forever (Go's `select {}`).
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(
            @names [__goro_c0 __goro_c1 __goro_c2 __goro_c3 __goro_c4 __goro_c5 __goro_c6 __goro_c7
                    __goro_c8 __goro_c9 __goro_c10 __goro_c11 __goro_c12 __goro_c13 __goro_c14 __goro_c15
                    __goro_c16 __goro_c17 __goro_c18 __goro_c19 __goro_c20 __goro_c21 __goro_c22 __goro_c23
                    __goro_c24 __goro_c25 __goro_c26 __goro_c27 __goro_c28 __goro_c29 __goro_c30 __goro_c31]
            @idx [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31]
            @decls []
            @refs []
            @arms []
            @default []
            @rest $($tokens)*
        )
    };
}

/// Parses `select!` arms one at a time (tt-muncher). Implementation detail.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All arms parsed.
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest) => {
        $crate::__select_gen!(@decls [$($decls)*] @refs [$($refs)*] @arms [$($arms)*] @default [$($def)*])
    };

    // recv arm, block body.
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest recv($rx:expr) -> $p:pat => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@recv $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($rx) ($p) ($body) $($rest)*)
    };
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest recv($rx:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@recv $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($rx) ($p) ($body) $($rest)*)
    };
    // recv arm, expression body.
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest recv($rx:expr) -> $p:pat => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!(@recv $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($rx) ($p) ($body) $($rest)*)
    };
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest recv($rx:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@recv $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($rx) ($p) ($body))
    };

    // send arm, block body.
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest send($tx:expr, $v:expr) -> $p:pat => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@send $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($tx) ($v) ($p) ($body) $($rest)*)
    };
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest send($tx:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@send $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($tx) ($v) ($p) ($body) $($rest)*)
    };
    // send arm, expression body.
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest send($tx:expr, $v:expr) -> $p:pat => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!(@send $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($tx) ($v) ($p) ($body) $($rest)*)
    };
    (@names [$name:ident $($names:ident)*] @idx [$i:tt $($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest send($tx:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@send $name [$($names)*] $i [$($idx)*] [$($decls)*] [$($refs)*] [$($arms)*] [$($def)*]
            ($tx) ($v) ($p) ($body))
    };

    // default arms.
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(try) ($body)] @rest $($rest)*)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(try) ($body)] @rest $($rest)*)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(try) ($body)] @rest $($rest)*)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default => $body:expr) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(try) ($body)] @rest)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default($d:expr) => $body:block , $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(until $d) ($body)] @rest $($rest)*)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default($d:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(until $d) ($body)] @rest $($rest)*)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default($d:expr) => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(until $d) ($body)] @rest $($rest)*)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [] @rest default($d:expr) => $body:expr) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*] @decls [$($decls)*] @refs [$($refs)*]
            @arms [$($arms)*] @default [(until $d) ($body)] @rest)
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)+] @rest default $($rest:tt)*) => {
        ::core::compile_error!("select! has more than one `default` arm")
    };

    // Accumulate one recv arm.
    (@recv $name:ident [$($names:ident)*] $i:tt [$($idx:tt)*] [$($decls:tt)*] [$($refs:tt)*] [$($arms:tt)*]
     [$($def:tt)*] ($rx:expr) ($p:pat) ($body:expr) $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*]
            @decls [$($decls)*
                let $name = &$rx;
                let $name = $crate::chan::RecvCase::new($crate::chan::__as_recv($name));
            ]
            @refs [$($refs)* (&$name as &dyn $crate::chan::SelectCase)]
            @arms [$($arms)* $i => match $name.finish_recv() { $p => $body }, ]
            @default [$($def)*] @rest $($rest)*)
    };

    // Accumulate one send arm.
    (@send $name:ident [$($names:ident)*] $i:tt [$($idx:tt)*] [$($decls:tt)*] [$($refs:tt)*] [$($arms:tt)*]
     [$($def:tt)*] ($tx:expr) ($v:expr) ($p:pat) ($body:expr) $($rest:tt)*) => {
        $crate::__select_parse!(@names [$($names)*] @idx [$($idx)*]
            @decls [$($decls)*
                let $name = &$tx;
                let $name = $crate::chan::SendCase::new($crate::chan::__as_send($name));
            ]
            @refs [$($refs)* (&$name as &dyn $crate::chan::SelectCase)]
            @arms [$($arms)* $i => match $name.commit($v) { $p => $body }, ]
            @default [$($def)*] @rest $($rest)*)
    };

    (@names [] $($rest:tt)*) => {
        ::core::compile_error!("select! supports at most 32 arms")
    };
    (@names [$($names:ident)*] @idx [$($idx:tt)*] @decls [$($decls:tt)*] @refs [$($refs:tt)*]
     @arms [$($arms:tt)*] @default [$($def:tt)*] @rest $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "select!: expected `recv(rx) -> pat => body`, `send(tx, value) -> pat => body`, ",
            "`default => body` or `default(duration) => body`, found: ",
            ::core::stringify!($($rest)*)
        ))
    };
}

/// Emits the code of a parsed `select!`. Implementation detail.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_gen {
    (@decls [$($decls:tt)*] @refs [$($refs:tt)*] @arms [$($arms:tt)*] @default []) => {{
        $($decls)*
        let __goro_idx = $crate::chan::__select_impl(&[$($refs),*], $crate::chan::SelectMode::Block);
        match __goro_idx {
            $($arms)*
            _ => ::core::unreachable!("select! returned an arm that does not exist"),
        }
    }};
    (@decls [$($decls:tt)*] @refs [$($refs:tt)*] @arms [$($arms:tt)*] @default [(try) ($body:expr)]) => {{
        $($decls)*
        let __goro_idx = $crate::chan::__select_impl(&[$($refs),*], $crate::chan::SelectMode::Try);
        match __goro_idx {
            $($arms)*
            _ => $body,
        }
    }};
    (@decls [$($decls:tt)*] @refs [$($refs:tt)*] @arms [$($arms:tt)*] @default [(until $d:expr) ($body:expr)]) => {{
        let __goro_deadline = $crate::chan::__deadline_after($d);
        $($decls)*
        let __goro_idx =
            $crate::chan::__select_impl(&[$($refs),*], $crate::chan::SelectMode::Until(__goro_deadline));
        match __goro_idx {
            $($arms)*
            _ => $body,
        }
    }};
}

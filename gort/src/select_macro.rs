//! The `select!` macro: crossbeam-channel's syntax over gort's select
//! (`chan/select.rs`). Each case's channel and send value are evaluated
//! once, up front (as Go does); a send value whose case is not chosen is
//! dropped.

/// Waits on several channel operations and runs exactly one (Go's
/// `select`), with crossbeam-channel's syntax:
///
/// ```text
/// select! {
///     recv(rx) -> msg => { /* msg: Result<T, RecvError> */ },
///     send(tx, value) -> res => { /* res: Result<(), SendError<T>> */ },
///     default => { /* nothing was ready */ },          // optional, or:
///     default(Duration) => { /* timed out */ },        // optional
/// }
/// ```
///
/// When several cases are ready, one is chosen uniformly at random. A
/// closed channel's `recv` is always ready (with `Err`); `chan::never()`
/// never is. A select parks once, registered on all its channels, and
/// exactly one case fires. With no cases and no default it blocks forever.
///
/// ```
/// use std::time::Duration;
/// use gort::chan;
/// gort::run(|| {
///     let (tx, rx) = chan::bounded(0);
///     let (_quit_tx, quit) = chan::bounded::<()>(0);
///     gort::go(move || tx.send(7).unwrap());
///     let got = gort::select! {
///         recv(rx) -> v => v.unwrap(),
///         recv(quit) -> _ => 0,
///         default(Duration::from_secs(10)) => -1,
///     };
///     assert_eq!(got, 7);
/// });
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_internal!(@list () () $($tokens)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_internal {
    // ---- Parsing: collect `[kind (chan) (value) (pat) {body}]` items. ----
    (@list ($($c:tt)*) ($($d:tt)*) recv($r:expr) -> $p:pat => $b:block , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)* [recv ($r) () ($p) {$b}]) ($($d)*) $($rest)*)
    };
    (@list ($($c:tt)*) ($($d:tt)*) recv($r:expr) -> $p:pat => $b:block $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)* [recv ($r) () ($p) {$b}]) ($($d)*) $($rest)*)
    };
    (@list ($($c:tt)*) ($($d:tt)*) recv($r:expr) -> $p:pat => $b:expr , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)* [recv ($r) () ($p) {$b}]) ($($d)*) $($rest)*)
    };
    (@list ($($c:tt)*) ($($d:tt)*) recv($r:expr) -> $p:pat => $b:expr) => {
        $crate::__select_internal!(@list ($($c)* [recv ($r) () ($p) {$b}]) ($($d)*))
    };
    (@list ($($c:tt)*) ($($d:tt)*) send($s:expr, $v:expr) -> $p:pat => $b:block , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)* [send ($s) ($v) ($p) {$b}]) ($($d)*) $($rest)*)
    };
    (@list ($($c:tt)*) ($($d:tt)*) send($s:expr, $v:expr) -> $p:pat => $b:block $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)* [send ($s) ($v) ($p) {$b}]) ($($d)*) $($rest)*)
    };
    (@list ($($c:tt)*) ($($d:tt)*) send($s:expr, $v:expr) -> $p:pat => $b:expr , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)* [send ($s) ($v) ($p) {$b}]) ($($d)*) $($rest)*)
    };
    (@list ($($c:tt)*) ($($d:tt)*) send($s:expr, $v:expr) -> $p:pat => $b:expr) => {
        $crate::__select_internal!(@list ($($c)* [send ($s) ($v) ($p) {$b}]) ($($d)*))
    };
    (@list ($($c:tt)*) () default => $b:block , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::now()) {$b}) $($rest)*)
    };
    (@list ($($c:tt)*) () default => $b:block $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::now()) {$b}) $($rest)*)
    };
    (@list ($($c:tt)*) () default => $b:expr , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::now()) {$b}) $($rest)*)
    };
    (@list ($($c:tt)*) () default => $b:expr) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::now()) {$b}))
    };
    (@list ($($c:tt)*) () default($t:expr) => $b:block , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::timeout($t)) {$b}) $($rest)*)
    };
    (@list ($($c:tt)*) () default($t:expr) => $b:block $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::timeout($t)) {$b}) $($rest)*)
    };
    (@list ($($c:tt)*) () default($t:expr) => $b:expr , $($rest:tt)*) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::timeout($t)) {$b}) $($rest)*)
    };
    (@list ($($c:tt)*) () default($t:expr) => $b:expr) => {
        $crate::__select_internal!(@list ($($c)*) (($crate::chan::__private::timeout($t)) {$b}))
    };
    (@list ($($c:tt)*) ($($d:tt)+) default $($rest:tt)*) => {
        compile_error!("select!: more than one `default` case")
    };
    (@list ($($c:tt)*) ($($d:tt)*)) => {
        $crate::__select_internal!(@emit ($($c)*) ($($d)*) () () () ())
    };
    (@list ($($c:tt)*) ($($d:tt)*) $($rest:tt)+) => {
        compile_error!(concat!(
            "select!: expected `recv(rx) -> pat => body`, `send(tx, value) -> pat => body`, ",
            "`default => body` or `default(timeout) => body`, found: ",
            stringify!($($rest)+)
        ))
    };

    // ---- Emission: one step per case, so each step's `__h`/`__s` are
    // distinct identifiers (macro hygiene). ----
    (@emit ([recv ($r:expr) () ($p:pat) {$b:expr}] $($rest:tt)*) ($($d:tt)*)
        ($($decls:tt)*) ($($cases:tt)*) ($($arms:tt)*) ($($idx:tt)*)) => {
        $crate::__select_internal!(@emit ($($rest)*) ($($d)*)
            ($($decls)*
                let __h = &$r;
                let mut __s = $crate::chan::__private::recv_slot(__h);)
            ($($cases)* $crate::chan::__private::recv_case(__h, ::core::ptr::addr_of_mut!(__s)),)
            ($($arms)*
                ::core::option::Option::Some((__i, __closed)) if __i == (0 $($idx)*) => {
                    let $p = $crate::chan::__private::recv_result(__closed, &mut __s);
                    $b
                })
            ($($idx)* + 1))
    };
    (@emit ([send ($s:expr) ($v:expr) ($p:pat) {$b:expr}] $($rest:tt)*) ($($d:tt)*)
        ($($decls:tt)*) ($($cases:tt)*) ($($arms:tt)*) ($($idx:tt)*)) => {
        $crate::__select_internal!(@emit ($($rest)*) ($($d)*)
            ($($decls)*
                let __h = &$s;
                let mut __s = $crate::chan::__private::send_slot(__h, $v);)
            ($($cases)* $crate::chan::__private::send_case(__h, ::core::ptr::addr_of_mut!(__s)),)
            ($($arms)*
                ::core::option::Option::Some((__i, __closed)) if __i == (0 $($idx)*) => {
                    let $p = $crate::chan::__private::send_result(__closed, &mut __s);
                    $b
                })
            ($($idx)* + 1))
    };
    (@emit () () ($($decls:tt)*) ($($cases:tt)*) ($($arms:tt)*) ($($idx:tt)*)) => {{
        $($decls)*
        let __cases = [$($cases)*];
        #[allow(unreachable_patterns, clippy::match_single_binding)]
        match $crate::chan::__private::run(&__cases, $crate::chan::__private::forever()) {
            $($arms)*
            _ => ::core::unreachable!("select! without default returned no case"),
        }
    }};
    (@emit () (($w:expr) {$db:expr}) ($($decls:tt)*) ($($cases:tt)*) ($($arms:tt)*) ($($idx:tt)*)) => {{
        $($decls)*
        let __cases = [$($cases)*];
        #[allow(unreachable_patterns, clippy::match_single_binding)]
        match $crate::chan::__private::run(&__cases, $w) {
            $($arms)*
            ::core::option::Option::None => $db,
            _ => ::core::unreachable!("select! chose a case it does not have"),
        }
    }};
}

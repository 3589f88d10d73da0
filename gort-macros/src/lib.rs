//! Attribute macros for the [gort] goroutine runtime: `#[gort::main]` and
//! `#[gort::test]`.
//!
//! Both turn an ordinary function into one whose body runs as the main
//! goroutine of a gort runtime, so the body can block on channels, sleep,
//! wait on a `WaitGroup` and spawn goroutines the way a Go program does.
//! Use them through their re-exports, `gort::main` and `gort::test`; this
//! crate is an implementation detail of `gort`.
//!
//! [gort]: https://docs.rs/gort

extern crate proc_macro;

use proc_macro::TokenStream;
use proc_macro2::{Literal, Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, ItemFn, Lit, Meta, ReturnType, Token};

/// Runs the function's body as the main goroutine of a gort runtime.
///
/// ```
/// use gort::sync::WaitGroup;
/// use std::time::Duration;
///
/// #[gort::main]
/// fn main() {
///     let wg = WaitGroup::new();
///     for i in 1..=3 {
///         wg.go(move || {
///             gort::time::sleep(Duration::from_millis(10));
///             println!("goroutine {i} done");
///         });
///     }
///     wg.wait(); // parks the main goroutine until all three are done
///     println!("all done");
/// }
/// ```
///
/// expands to (roughly)
///
/// ```
/// # use std::time::Duration;
/// fn main() {
///     fn __gort_main() {
///         // ... the body ...
/// #       gort::time::sleep(Duration::from_millis(1));
///     }
///     ::gort::debug::dump_on_sigquit(); // SIGQUIT: the report, exit 2
///     ::gort::run(__gort_main)
/// }
/// ```
///
/// [`gort::run`](https://docs.rs/gort) starts the default runtime (`procs`
/// defaults to the available cores, or to the `GOMAXPROCS` environment
/// variable), runs the body as its main goroutine and returns when the body
/// returns; goroutines still alive then are cancelled, as in Go. A panic in
/// the body resumes in `main`.
///
/// `main` may return anything `main` can return, such as
/// `Result<(), Box<dyn Error>>`; the value is reported (an `Err` is printed as
/// `Error: ...` and the process exits with status 1) exactly as std does for
/// a plain `main`, so the error type need not be `Send`:
///
/// ```
/// use std::error::Error;
///
/// #[gort::main]
/// fn main() -> Result<(), Box<dyn Error>> {
///     let n: i32 = gort::go(|| "42".parse::<i32>()).join().unwrap()?;
///     println!("{n}");
///     Ok(())
/// }
/// ```
///
/// # Options
///
/// `#[gort::main(procs = 2, stack_size = 1048576)]` builds an explicit
/// runtime with `gort::runtime::Builder` (`.procs(2).stack_size(1048576)`)
/// instead of using the default one; `procs` then overrides `GOMAXPROCS`.
/// Options take integer literals.
///
/// ```
/// #[gort::main(procs = 2)]
/// fn main() {
///     assert_eq!(gort::procs(), 2);
/// }
/// ```
///
/// The function does not have to be called `main` (it then keeps its
/// signature, and its return type must be `Send`):
///
/// ```
/// #[gort::main]
/// fn compute() -> u64 {
///     let h = gort::go(|| (1..=10u64).sum::<u64>());
///     h.join().unwrap()
/// }
///
/// fn main() {
///     assert_eq!(compute(), 55);
/// }
/// ```
///
/// # Errors
///
/// Goroutines are not `async`:
///
/// ```compile_fail
/// #[gort::main]
/// async fn main() {}
/// ```
///
/// The function takes no arguments:
///
/// ```compile_fail
/// #[gort::main]
/// fn main(args: Vec<String>) {}
/// ```
///
/// Only `procs` and `stack_size` are options, and their values are integers:
///
/// ```compile_fail
/// #[gort::main(workers = 4)]
/// fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::main(procs = "4")]
/// fn main() {}
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

/// Runs a test's body as the main goroutine of a fresh gort runtime.
///
/// ```
/// #[gort::test]
/// fn goroutines_run() {
///     let h = gort::go(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42);
/// }
/// # fn main() {}
/// ```
///
/// expands to (roughly)
///
/// ```no_run
/// #[test]
/// fn goroutines_run() {
///     fn __gort_test() {
///         // ... the body ...
///     }
///     ::gort::runtime::Builder::new()
///         .build()
///         .expect("gort: cannot build test runtime")
///         .run(__gort_test)
/// }
/// # fn main() {}
/// ```
///
/// Every test gets its own runtime, dropped when the test ends (which cancels
/// the goroutines it left behind and joins the runtime's threads), so tests
/// running in parallel do not share processors or goroutines.
///
/// # Options
///
/// `procs = N` and `stack_size = BYTES` configure the test's runtime
/// (`Builder::procs`, `Builder::stack_size`); `procs = 1` is handy to make a
/// test's interleavings deterministic:
///
/// ```
/// #[gort::test(procs = 1, stack_size = 65536)]
/// fn one_processor() {
///     assert_eq!(gort::procs(), 1);
/// }
/// # fn main() {}
/// ```
///
/// Goroutines the test spawned (directly or through others) that are still
/// alive a second after its main returns fail it, each listed as
/// `gort::debug::dump` lists it (Go's goleak); `leaks = "allow"` turns that
/// off. A test whose goroutines all wait with nothing pending (no timer,
/// socket wait or running goroutine) for `deadlock_after` (default `"1s"`;
/// `"500ms"`, `"5s"`, `"2m"`, ...) fails with the deadlock report instead of
/// hanging:
///
/// ```
/// #[gort::test(deadlock_after = "200ms")]
/// #[should_panic(expected = "all goroutines are asleep - deadlock!")]
/// fn stuck() {
///     let (_tx, rx) = gort::chan::bounded::<u8>(0);
///     let _ = rx.recv();
/// }
///
/// #[gort::test(leaks = "allow")]
/// fn leaves_a_goroutine_parked() {
///     let (tx, rx) = gort::chan::bounded::<u8>(0);
///     std::mem::forget(tx);
///     gort::go(move || rx.recv());
/// }
/// # fn main() {}
/// ```
///
/// Other attributes are kept (`#[should_panic]`, `#[ignore]`, ...), and a
/// test may return a `Result` (any error type, `Send` or not), which is
/// reported as std reports a failing `#[test]`:
///
/// ```
/// #[gort::test]
/// #[should_panic(expected = "boom")]
/// fn panics() {
///     panic!("boom");
/// }
///
/// #[gort::test]
/// fn parses() -> Result<(), std::num::ParseIntError> {
///     let n: i32 = "7".parse()?;
///     assert_eq!(n, 7);
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// # Errors
///
/// ```compile_fail
/// #[gort::test]
/// async fn not_a_goroutine() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::test(threads = 2)]
/// fn unknown_option() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::test(procs = 1.5)]
/// fn not_an_integer() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::test(procs = 0)]
/// fn no_processors() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::test]
/// fn takes_arguments(n: u32) {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::test(leaks = "yes")]
/// fn leaks_takes_only_allow() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::test(deadlock_after = "soon")]
/// fn not_a_duration() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[gort::main(leaks = "allow")]
/// fn main() {}
/// ```
///
/// `#[gort::test]` already declares the test, so `#[test]` must not be added:
///
/// ```compile_fail
/// #[gort::test]
/// #[test]
/// fn twice() {}
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[gort::main]",
            Kind::Test => "#[gort::test]",
        }
    }
}

/// The options shared by both attributes, as `Builder` method calls.
#[derive(Default)]
struct Options {
    procs: Option<(Literal, Span)>,
    stack_size: Option<(Literal, Span)>,
    /// `leaks = "allow"` (test only).
    leaks_allowed: Option<Span>,
    /// `deadlock_after = "5s"`, in nanoseconds (test only).
    deadlock_after: Option<(u64, Span)>,
}

const OPTIONS: &[&str] = &["procs", "stack_size"];
const TEST_OPTIONS: &[&str] = &["leaks", "deadlock_after"];

/// "1s", "500ms", "1.5s", "2m", "250us" as nanoseconds.
fn parse_duration(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.trim().parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        _ => return None,
    };
    let v = n * scale;
    (n.is_finite() && v >= 1.0 && v < u64::MAX as f64).then_some(v as u64)
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new_spanned(
                &item,
                format!(
                    "the `{}` attribute can only be applied to a function",
                    kind.attr()
                ),
            );
            return with_error(item, err);
        }
    };

    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };

    let options = match parse_options(kind, args) {
        Ok(options) => options,
        Err(e) => {
            push(e);
            Options::default()
        }
    };
    for e in check_signature(kind, &func) {
        push(e);
    }
    if let Some(e) = errors {
        return with_error(func.into_token_stream(), e);
    }

    match kind {
        Kind::Main => expand_main(func, &options),
        Kind::Test => expand_test(func, &options),
    }
}

/// Emits the item unchanged next to the errors, so that one mistake in the
/// attribute does not turn into a cascade of unrelated errors in the body.
fn with_error(item: TokenStream2, err: syn::Error) -> TokenStream2 {
    let err = err.into_compile_error();
    quote!(#err #item)
}

fn parse_options(kind: Kind, args: TokenStream2) -> syn::Result<Options> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut options = Options::default();
    let mut errors: Option<syn::Error> = None;
    for meta in metas {
        if let Err(e) = parse_option(kind, &mut options, meta) {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(options),
    }
}

fn parse_option(kind: Kind, options: &mut Options, meta: Meta) -> syn::Result<()> {
    let allowed = match kind {
        Kind::Main => "expected `procs = <integer>` or `stack_size = <integer>`",
        Kind::Test => {
            "expected `procs = <integer>`, `stack_size = <integer>`, `leaks = \"allow\"` \
             or `deadlock_after = \"<duration>\"`"
        }
    };
    let nv = match meta {
        Meta::NameValue(nv) => nv,
        Meta::Path(path) => {
            return Err(syn::Error::new_spanned(
                path,
                format!("an option needs a value: {allowed}"),
            ))
        }
        Meta::List(list) => {
            return Err(syn::Error::new_spanned(
                list,
                format!("unexpected option: {allowed}"),
            ))
        }
    };
    let name = match nv.path.get_ident() {
        Some(ident) if OPTIONS.contains(&ident.to_string().as_str()) => ident.to_string(),
        Some(ident) if kind == Kind::Test && TEST_OPTIONS.contains(&ident.to_string().as_str()) => {
            ident.to_string()
        }
        _ => {
            let shown = nv.path.to_token_stream().to_string().replace(' ', "");
            let options = match kind {
                Kind::Main => "the options are `procs` and `stack_size`",
                Kind::Test => "the options are `procs`, `stack_size`, `leaks` and `deadlock_after`",
            };
            return Err(syn::Error::new_spanned(
                &nv.path,
                format!("unknown option `{shown}`: {options}"),
            ));
        }
    };
    let span = nv.span();
    if TEST_OPTIONS.contains(&name.as_str()) {
        let text = match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => s.value(),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    if name == "leaks" {
                        "`leaks` takes the string \"allow\": `leaks = \"allow\"`"
                    } else {
                        "`deadlock_after` takes a duration string, e.g. `deadlock_after = \"5s\"`"
                    },
                ))
            }
        };
        let duplicate = || syn::Error::new_spanned(&nv.path, format!("duplicate option `{name}`"));
        if name == "leaks" {
            if text != "allow" {
                return Err(syn::Error::new_spanned(
                    &nv.value,
                    format!("`leaks` can only be \"allow\" (leak checks are on by default), not {text:?}"),
                ));
            }
            if options.leaks_allowed.replace(span).is_some() {
                return Err(duplicate());
            }
        } else {
            let Some(ns) = parse_duration(&text) else {
                return Err(syn::Error::new_spanned(
                    &nv.value,
                    format!(
                        "`deadlock_after` must be a positive duration such as \"500ms\", \"5s\" or \"2m\", not {text:?}"
                    ),
                ));
            };
            if options.deadlock_after.replace((ns, span)).is_some() {
                return Err(duplicate());
            }
        }
        return Ok(());
    }
    let value = match &nv.value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let value: usize = int.base10_parse().map_err(|e| {
                syn::Error::new_spanned(int, format!("`{name}` must fit in a usize: {e}"))
            })?;
            match int.suffix() {
                "" | "usize" => {}
                suffix => {
                    return Err(syn::Error::new_spanned(
                        int,
                        format!("`{name}` is a usize: remove the `{suffix}` suffix"),
                    ))
                }
            }
            if value == 0 {
                let what = if name == "procs" {
                    "at least 1 (the number of goroutines running at once)"
                } else {
                    "greater than 0 (a size in bytes)"
                };
                return Err(syn::Error::new_spanned(
                    int,
                    format!("`{name}` must be {what}"),
                ));
            }
            let mut lit = Literal::usize_unsuffixed(value);
            lit.set_span(int.span());
            lit
        }
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!(
                    "`{name}` takes an integer literal, e.g. `{name} = {}`",
                    example(&name)
                ),
            ))
        }
    };
    let slot = if name == "procs" {
        &mut options.procs
    } else {
        &mut options.stack_size
    };
    if slot.is_some() {
        return Err(syn::Error::new_spanned(
            &nv.path,
            format!("duplicate option `{name}`"),
        ));
    }
    *slot = Some((value, span));
    Ok(())
}

fn example(name: &str) -> &'static str {
    if name == "procs" {
        "4"
    } else {
        "1048576"
    }
}

fn check_signature(kind: Kind, func: &ItemFn) -> Vec<syn::Error> {
    let attr = kind.attr();
    let sig = &func.sig;
    let mut errors = Vec::new();
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            token,
            "gort goroutines are not async: remove `async` (blocking calls such as \
             `recv`, `sleep` and `wait` park the goroutine, no `.await` needed)",
        ));
    }
    if let Some(token) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            token,
            format!("`{attr}` cannot be used on a `const fn`"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            format!("`{attr}` functions cannot take arguments"),
        ));
    } else if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!("`{attr}` functions cannot take arguments"),
        ));
    }
    let generic = format!("`{attr}` functions cannot be generic");
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.generics, generic));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(where_clause, generic));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            token,
            format!("`{attr}` functions cannot be `unsafe`: use an `unsafe` block in the body"),
        ));
    }
    if kind == Kind::Test {
        for a in &func.attrs {
            if is_test_attr(a) {
                errors.push(syn::Error::new_spanned(
                    a,
                    "`#[gort::test]` already declares the test: remove this `#[test]`",
                ));
            }
        }
    }
    errors
}

/// `#[test]`, `#[core::prelude::v1::test]`, `#[::std::prelude::rust_2021::test]`, ...
fn is_test_attr(attr: &syn::Attribute) -> bool {
    let path = attr.path();
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segs.as_slice() {
        [one] => one == "test",
        [krate, prelude, _, last] => {
            (krate == "core" || krate == "std") && prelude == "prelude" && last == "test"
        }
        _ => false,
    }
}

/// `.procs(n).stack_size(m)`
fn builder_calls(options: &Options) -> TokenStream2 {
    let mut calls = TokenStream2::new();
    if let Some((n, span)) = &options.procs {
        calls.extend(quote_spanned!(*span=> .procs(#n)));
    }
    if let Some((n, span)) = &options.stack_size {
        calls.extend(quote_spanned!(*span=> .stack_size(#n)));
    }
    calls
}

/// Splits `func` into the inner function holding the original body (so that
/// `return` and `?` keep their meaning) and the pieces of the outer one.
fn inner_fn(func: &ItemFn, name: &str) -> (Ident, TokenStream2) {
    let ident = Ident::new(name, Span::call_site());
    let output = &func.sig.output;
    let body = &func.block;
    let inner = quote! {
        fn #ident() #output #body
    };
    (ident, inner)
}

fn expand_main(func: ItemFn, options: &Options) -> TokenStream2 {
    let ItemFn {
        attrs, vis, sig, ..
    } = &func;
    let (inner_ident, inner) = inner_fn(&func, "__gort_main");
    let is_main = sig.ident == "main";
    let has_output = matches!(sig.output, ReturnType::Type(..));

    let runner = if options.procs.is_none() && options.stack_size.is_none() {
        quote!(::gort::run)
    } else {
        let calls = builder_calls(options);
        quote! {
            ::gort::runtime::Builder::new()
                #calls
                .build()
                .expect("gort: cannot build the runtime")
                .run
        }
    };

    // A program's `main` reports every goroutine on SIGQUIT, as Go's do.
    let sigquit = if is_main {
        quote!(::gort::debug::dump_on_sigquit();)
    } else {
        quote!()
    };
    if is_main && has_output {
        // `main` returning a value: report it (`Error: ..`, exit status 1) as
        // std does, inside the goroutine, so that the value need not be Send.
        let mut outer = sig.clone();
        outer.output = syn::parse_quote!(-> ::std::process::ExitCode);
        quote! {
            #(#attrs)*
            #vis #outer {
                #inner
                #sigquit
                #runner(|| ::std::process::Termination::report(#inner_ident()))
            }
        }
    } else {
        quote! {
            #(#attrs)*
            #vis #sig {
                #inner
                #sigquit
                #runner(#inner_ident)
            }
        }
    }
}

fn expand_test(func: ItemFn, options: &Options) -> TokenStream2 {
    let ItemFn {
        attrs, vis, sig, ..
    } = &func;
    let (inner_ident, inner) = inner_fn(&func, "__gort_test");
    let calls = builder_calls(options);
    let leaks = options.leaks_allowed.is_none();
    let after = options.deadlock_after.map_or(1_000_000_000, |(ns, _)| ns);
    let runtime = quote! {
        ::gort::runtime::Builder::new()
            #calls
            .build()
            .expect("gort: cannot build test runtime")
    };
    let checks = quote! {
        ::gort::runtime::__TestChecks {
            leaks: #leaks,
            deadlock_after: ::std::time::Duration::from_nanos(#after),
        }
    };
    match &sig.output {
        ReturnType::Default => quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis #sig {
                #inner
                #runtime.__run_test(#checks, #inner_ident)
            }
        },
        ReturnType::Type(..) => {
            // Report the value (`Error: ..` for an `Err`) inside the goroutine,
            // as libtest would on the test's thread, so that the error type
            // need not be Send; the exit code tells libtest whether it failed.
            let mut outer = sig.clone();
            outer.output = syn::parse_quote!(-> ::std::process::ExitCode);
            quote! {
                #[::core::prelude::v1::test]
                #(#attrs)*
                #vis #outer {
                    #inner
                    #runtime.__run_test(#checks, || ::std::process::Termination::report(#inner_ident()))
                }
            }
        }
    }
}

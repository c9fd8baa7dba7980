//! A fence around calls into dependencies (prost-reflect's decoder, its serde serializer, the
//! descriptor pool builder): a panic in one of them becomes an error for that one call, so a
//! bug in a dependency fails one event instead of the capture or the server.
//!
//! The default panic hook would still print "thread panicked at ..." for every caught panic,
//! once per event of a busy topic. So the first guarded call installs a hook that stays quiet
//! while the panicking thread is inside a guard (and delegates to the hook that was there
//! before otherwise), and keeps the panic's location for the error text.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many guards the current thread is inside (guards nest: a guarded decode of a
    /// framed payload calls a guarded protobuf decode).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// Where the last caught panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                LOCATION.with(|l| *l.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// A panic inside a dependency, caught by the guard: a bug to report, not a bad payload. It
/// reads `decoder bug: MESSAGE (at FILE:LINE)`, the text stored as that event's decode error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decoder bug: {message}{}", at.as_ref().map(|a| format!(" (at {a})")).unwrap_or_default())]
pub struct DecoderBug {
    /// The panic's own message.
    pub message: String,
    /// `FILE:LINE` of the panic, when the hook saw it.
    pub at: Option<String>,
}

/// Runs `f`; a panic inside it comes back as a [`DecoderBug`].
///
/// Unwind safety: what `f` touches is either owned by it or immutable descriptors and input
/// bytes, so nothing is left half-changed for the caller to see after a caught panic.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, DecoderBug> {
    install_quiet_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let out = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    out.map_err(|payload| DecoderBug {
        message: payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
        at: LOCATION.with(|l| l.borrow_mut().take()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_place() {
        let e = guarded(|| -> u8 { panic!("boom {}", 7) })
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("decoder bug: boom 7 (at "), "{e}");
        assert!(e.contains("guard.rs"), "{e}");
        assert_eq!(guarded(|| 5), Ok(5));
        // Nested guards: the inner one catches, the outer one sees a value.
        let nested = guarded(|| guarded(|| -> u8 { panic!("inner") }));
        assert!(nested.unwrap().unwrap_err().message.contains("inner"));
        // The depth is back to zero: a panic outside any guard still reaches the old hook.
        assert_eq!(DEPTH.with(Cell::get), 0);
    }
}

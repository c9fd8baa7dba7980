//! How a capture fails: the bus or the lake, and, once it has read anything, the account of
//! what it kept (the e2e tests and people read that sentence, so its wording is fixed).

use crate::CaptureProgress;
use sluice_bus::BusError;
use sluice_lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The last flush failed: the events still buffered are lost, and the bus was not told
    /// they were kept.
    #[error("{error} ({not_written} events not written)")]
    NotWritten {
        #[source]
        error: LakeError,
        not_written: usize,
    },
    /// The capture ended in `cause`; `progress` is what it read and made durable until then.
    #[error(
        "{cause}; captured {} events into the lake before stopping ({} read{})",
        .progress.captured,
        .progress.read,
        not_written_clause(*.not_written)
    )]
    Stopped {
        #[source]
        cause: Box<CaptureError>,
        progress: Box<CaptureProgress>,
        /// Events read and decoded that never reached the lake.
        not_written: usize,
    },
}

fn not_written_clause(n: usize) -> String {
    if n > 0 {
        format!(", {n} not written")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone() -> BusError {
        BusError::Unreachable {
            what: "kafka".into(),
            reason: "no answer for 30 s (--broker-timeout): gone".into(),
        }
    }

    fn stopped(not_written: usize) -> CaptureError {
        CaptureError::Stopped {
            cause: Box::new(CaptureError::Bus(gone())),
            progress: Box::new(CaptureProgress {
                read: 520,
                captured: 500,
                ..CaptureProgress::default()
            }),
            not_written,
        }
    }

    /// The account is appended to the cause's own message, word for word as before the
    /// pipeline left the API crate.
    #[test]
    fn the_account_follows_the_cause() {
        let cause = gone().to_string();
        assert_eq!(
            stopped(0).to_string(),
            format!("{cause}; captured 500 events into the lake before stopping (520 read)")
        );
        assert_eq!(
            stopped(20).to_string(),
            format!(
                "{cause}; captured 500 events into the lake before stopping (520 read, 20 not written)"
            )
        );
    }
}

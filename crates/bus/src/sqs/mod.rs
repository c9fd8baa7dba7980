//! Amazon SQS through the AWS SDK, on a small tokio runtime of its own.
//!
//! Reading SQS always changes queue state (a received message is hidden and its receive count
//! rises), so there is no quiet mode: `QueueRead::Requeue` is a peek (messages are made
//! visible again when reading ends) and `QueueRead::Destructive` drains (messages are deleted
//! once durably in the lake).

mod browse;
mod config;
mod conventions;
mod settings;
mod sink;
mod source;

pub use config::SqsConfig;
pub use conventions::SqsConventions;
pub use settings::SqsSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

/// SQS's limit on message attributes.
pub(crate) const MAX_ATTRIBUTES: usize = 10;

/// An SQS connection: settings plus the name used in errors and event ids.
#[derive(Clone)]
pub struct Sqs {
    pub name: String,
    pub config: SqsConfig,
}

fn runtime() -> Result<tokio::runtime::Runtime, BusError> {
    crate::runtime("sqs")
}

/// An SDK error in Sluice's terms: unreachable, refused credentials, or the service's message.
fn sdk_err<E, R>(a: &Sqs, what: &str, e: SdkError<E, R>) -> BusError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = format!("{}", DisplayErrorContext(&e));
    let place = format!("SQS at {} ({})", a.config.place(), a.name);
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => BusError::Unreachable {
            what: place,
            reason: text,
        },
        _ if [
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "UnrecognizedClient",
            "AccessDenied",
            "credentials",
        ]
        .iter()
        .any(|k| text.contains(k)) =>
        {
            BusError::Auth {
                what: place,
                reason: text,
            }
        }
        _ => BusError::Client(format!("{what}: {text}")),
    }
}

impl Connector for Sqs {
    fn bus(&self) -> Bus {
        Bus::Sqs
    }

    fn check(&self, timeout: Duration) -> Result<Health, BusError> {
        browse::check(self, timeout)
    }

    fn sources(&self, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
        browse::sources(self, timeout)
    }

    fn source(&self, name: &str, timeout: Duration) -> Result<Option<SourceInfo>, BusError> {
        browse::source(self, name, timeout)
    }

    fn reader(
        &self,
        sources: &[String],
        _from: StartFrom,
        options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Ok(Box::new(source::SqsReader::open(self, sources, options)?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Ok(Box::new(sink::SqsWriter::open(self)?))
    }

    fn dead_letter_sources(&self, name: &str, timeout: Duration) -> Result<Vec<String>, BusError> {
        browse::dead_letter_sources(self, name, timeout)
    }
}

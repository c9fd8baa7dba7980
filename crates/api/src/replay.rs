//! Replay: to a destination or back to each event's origin, with edits, plans and an exact
//! account also when it fails.

use crate::edit::{self, ReplayEdit};
use crate::error::{ApiError, ErrorCode, Result};
use crate::{registry, schemas, Sluice, CONNECT_TIMEOUT};
use sluice_codec::Decoder;
use sluice_lake::{Lake, Query};
use sluice_model::Event;
use sluice_replay::{ReplayProgress, ReplaySummary};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// Only these events within the filter (none: every match).
    pub ids: Vec<String>,
    /// `CONNECTION:TOPIC`, `CONNECTION:EXCHANGE[/ROUTING_KEY]` or `CONNECTION:QUEUE`; unused with
    /// `to_origin`.
    pub to: String,
    /// Send each event back where it came from (dead-letter headers, or Sluice's own).
    pub to_origin: bool,
    pub rate: Option<u32>,
    pub limit: Option<u64>,
    pub keep_partition: bool,
    /// Events to send as the user edited them (`--edit`).
    pub edits: Vec<ReplayEdit>,
    /// How long to wait for a destination that stops answering (default 30 s).
    pub broker_timeout: Option<Duration>,
    /// `--retain` (MQTT) and `--keep-ids` (Redis streams).
    pub send: sluice_bus::SendOptions,
}

impl Sluice {
    /// `CONNECTION:TARGET`, or `CONNECTION` alone for a destination that needs no target (an
    /// HTTP endpoint): the destination bus's conventions judge the target.
    fn parse_target(to: &str) -> Result<(String, String)> {
        let (c, t) = to.split_once(':').unwrap_or((to, ""));
        if c.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("--to {to:?}: expected CONNECTION:TOPIC"),
            ));
        }
        Ok((c.to_string(), t.to_string()))
    }

    /// Encodes every edit up front, so a bad one stops the replay before anything is sent.
    fn edited_payloads(
        &self,
        filter: &str,
        ids: &[String],
        edits: &[ReplayEdit],
    ) -> Result<Option<sluice_replay::Edited>> {
        if edits.is_empty() {
            return Ok(None);
        }
        let mut schemas = None;
        let mut registries = HashMap::new();
        let mut load = |event: &Event| -> Result<Decoder> {
            let set = match &schemas {
                Some(s) => s,
                None => schemas.insert(schemas::load(&self.schema_roots())?),
            };
            // The event's own type when it is known here (a registry's types may not be).
            let decoder = match event.schema.as_deref().map(|t| set.type_codec(t)) {
                Some(Ok(codec)) => Decoder::typed(codec),
                _ => Decoder::sniffing(),
            };
            let registry = match registries.get(&event.connection) {
                Some(r) => Option::clone(r),
                None => {
                    let cfg = self.config()?;
                    let r = registry::decoder(
                        &self.config_dir,
                        &event.connection,
                        cfg.connection(&event.connection)?,
                    )?;
                    registries.insert(event.connection.clone(), r.clone());
                    r
                }
            };
            Ok(decoder.with_registry(registry))
        };
        let mut out = HashMap::new();
        for edit in edits {
            let event = match &edit.id {
                Some(id) if !ids.is_empty() && !ids.contains(id) => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        format!("edit for event {id}: that event is not among those selected"),
                    ))
                }
                Some(id) => {
                    let this = format!("event.id = {}", sluice_filter::quote(id));
                    let filter = if filter.trim().is_empty() {
                        this
                    } else {
                        format!("({filter}) and {this}")
                    };
                    self.search_stored(&filter, 1, 0)?.pop().ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidInput,
                            format!("edit for event {id}: the filter does not match that event"),
                        )
                    })?
                }
                None => {
                    let picked = Self::compile_picked(filter, ids)?;
                    let mut two = Query::open(&self.lake()?)?.search(&picked, 2, 0)?;
                    if two.len() != 1 {
                        return Err(ApiError::new(
                            ErrorCode::InvalidInput,
                            format!(
                                "an edit without an event id needs a filter matching exactly one event; this one matches {}",
                                if two.is_empty() { "none".to_string() } else { "more".to_string() }
                            ),
                        ));
                    }
                    two.remove(0)
                }
            };
            let bytes = edit::encode(&event, &edit.decoded, &mut load)?;
            out.insert(event.id, bytes);
        }
        Ok(Some(Arc::new(out)))
    }

    fn replay_options(
        req: &ReplayRequest,
        target: String,
        to_bus: sluice_model::Bus,
        routing_key: Option<String>,
        lake: &Lake,
    ) -> sluice_replay::ReplayOptions {
        let run = uuid::Uuid::new_v4().simple().to_string();
        sluice_replay::ReplayOptions {
            target,
            to_bus,
            routing_key,
            rate: req.rate,
            limit: req.limit,
            keep_partition: req.keep_partition,
            replay_prefix: format!("{}:{}", lake.id(), &run[..12]),
            edited: None,
            broker_timeout: req
                .broker_timeout
                .unwrap_or(sluice_replay::DEFAULT_BROKER_TIMEOUT),
            send: req.send,
        }
    }

    /// What replay would send, in order, without sending.
    pub fn replay_plan(
        &self,
        filter: &str,
        req: &ReplayRequest,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<u64> {
        let c = Self::compile_picked(filter, &req.ids)?;
        let lake = self.lake()?;
        if !req.to_origin {
            let (connection, _) = Self::parse_target(&req.to)?;
            self.config()?.connection(&connection)?;
        }
        let edited = self.edited_payloads(filter, &req.ids, &req.edits)?;
        sluice_replay::plan(&Query::open(&lake)?, &c, req.limit, |e| {
            match edited.as_ref().and_then(|m| m.get(&e.id)) {
                Some(p) => {
                    let mut e = e.clone();
                    e.payload = p.clone();
                    on_event(&e)
                }
                None => on_event(e),
            }
        })
        .map_err(replay_err)
    }

    pub fn replay(
        &self,
        filter: &str,
        req: &ReplayRequest,
        stop: &AtomicBool,
        on_progress: &mut dyn FnMut(&ReplayProgress),
    ) -> std::result::Result<ReplaySummary, ReplayFailure> {
        let c = Self::compile_picked(filter, &req.ids)?;
        let lake = self.lake()?;
        let edited = self.edited_payloads(filter, &req.ids, &req.edits)?;
        if req.to_origin {
            // Each event's origin names its own destination and bus; these are replaced.
            let mut opts =
                Self::replay_options(req, String::new(), sluice_model::Bus::ALL[0], None, &lake);
            opts.edited = edited;
            let mut open = |name: &str| {
                let c = self
                    .connector(name)
                    .map_err(|e| sluice_bus::BusError::Config(e.message))?;
                Ok((c.writer()?, c.bus()))
            };
            let mut finder = self.origin_finder();
            let mut fallback = |e: &Event| finder.feeding_source(e);
            return sluice_replay::replay_to_origin(
                &Query::open(&lake)?,
                &c,
                &mut open,
                &mut fallback,
                &opts,
                stop,
                on_progress,
            )
            .map_err(ReplayFailure::from);
        }
        let (connection, target) = Self::parse_target(&req.to)?;
        let connector = self.connector(&connection)?;
        let to_bus = connector.bus();
        let (dest, info) = sluice_bus::conventions(to_bus)
            .destination(&target, &mut |name| connector.source(name, CONNECT_TIMEOUT))?;
        let topic = &dest.source;
        let info = info.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("unknown topic {topic:?} on {connection} (create it first)"),
            )
        })?;
        let query = Query::open(&lake)?;
        if req.keep_partition && sluice_bus::capabilities(to_bus).partitions {
            let max = query.sql_max_partition(&c)?;
            if max.is_some_and(|m| m as usize >= info.partitions.len()) {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("--keep-partition: events come from partition {} but {topic} has {} partitions", max.unwrap_or(0), info.partitions.len()),
                )
                .into());
            }
        }
        let mut opts = Self::replay_options(req, dest.send_to, to_bus, dest.routing_key, &lake);
        opts.edited = edited;
        let mut writer = connector.writer()?;
        sluice_replay::replay(&query, &c, writer.as_mut(), &opts, stop, on_progress)
            .map_err(ReplayFailure::from)
    }
}

/// Finds where `replay --to-origin` sends events, asking a bus that knows (SQS's redrive
/// policies; once per source) which source feeds a dead-letter source when the event does not
/// say.
pub struct OriginFinder<'a> {
    sluice: &'a Sluice,
    fed_by: HashMap<(String, String), Option<String>>,
}

impl OriginFinder<'_> {
    /// A dead-letter source fed by exactly one source sends back to that source.
    fn feeding_source(&mut self, e: &Event) -> Option<sluice_replay::Origin> {
        if !sluice_bus::capabilities(e.bus).dead_letter_sources {
            return None;
        }
        let sluice = self.sluice;
        let found = self
            .fed_by
            .entry((e.connection.clone(), e.source.clone()))
            .or_insert_with(|| {
                let c = sluice.connector(&e.connection).ok()?;
                match c
                    .dead_letter_sources(&e.source, CONNECT_TIMEOUT)
                    .ok()?
                    .as_slice()
                {
                    [one] => Some(one.clone()),
                    _ => None,
                }
            });
        found.clone().map(|target| sluice_replay::Origin {
            connection: e.connection.clone(),
            target,
            routing_key: None,
        })
    }

    /// `CONNECTION:TARGET[/ROUTING_KEY]`, or why the event has no known origin.
    pub fn describe(
        &mut self,
        e: &Event,
    ) -> std::result::Result<String, sluice_replay::OriginError> {
        let o = sluice_replay::origin(e).or_else(|why| self.feeding_source(e).ok_or(why))?;
        Ok(match o.routing_key {
            Some(rk) => format!("{}:{}/{rk}", o.connection, o.target),
            None => format!("{}:{}", o.connection, o.target),
        })
    }
}

impl Sluice {
    pub fn origin_finder(&self) -> OriginFinder<'_> {
        OriginFinder {
            sluice: self,
            fed_by: HashMap::new(),
        }
    }
}

/// A replay that ended in an error, with its account so far (none when it failed before
/// anything was sent), so the CLI, the app and the history report what was sent.
#[derive(Debug)]
pub struct ReplayFailure {
    pub error: ApiError,
    pub summary: Option<Box<ReplaySummary>>,
}

impl From<ApiError> for ReplayFailure {
    fn from(error: ApiError) -> Self {
        ReplayFailure {
            error,
            summary: None,
        }
    }
}

impl From<sluice_lake::LakeError> for ReplayFailure {
    fn from(e: sluice_lake::LakeError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<sluice_bus::BusError> for ReplayFailure {
    fn from(e: sluice_bus::BusError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<sluice_replay::Incomplete> for ReplayFailure {
    fn from(i: sluice_replay::Incomplete) -> Self {
        ReplayFailure {
            error: replay_err(i.error),
            summary: Some(i.summary),
        }
    }
}

fn replay_err(e: sluice_replay::ReplayError) -> ApiError {
    match e {
        sluice_replay::ReplayError::Lake(l) => l.into(),
        sluice_replay::ReplayError::Bus(b) => b.into(),
    }
}

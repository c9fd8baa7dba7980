//! Reading: a tap (own exclusive, auto-delete queue bound to each exchange; nothing is taken
//! from anyone) or, when asked, an application's queue (its messages are taken: acknowledged
//! once durable, or given back).

use super::{properties, Amqp};
use crate::{BusError, QueueRead, ReadOptions, Reader, Trouble};
use futures_util::stream::{select_all, BoxStream};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use sluice_model::{Message, StartFrom};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A quiet consumer cannot tell a broker with nothing to send from a connection that hangs
/// (RabbitMQ's heartbeat takes two 60 s intervals to notice): after this long without a
/// delivery the reader asks the broker about its queue, with the same timeout.
const IDLE_PROBE: Duration = Duration::from_secs(3);
/// The most acknowledging or giving back messages waits for a broker that stopped answering.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

type Deliveries = BoxStream<'static, (String, lapin::Result<Delivery>)>;

pub(crate) struct AmqpReader {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    channel: Channel,
    deliveries: Deliveries,
    connection: String,
    /// Names this run's events: taps have no offsets to name messages by.
    run: String,
    seq: u64,
    mode: Option<QueueRead>,
    /// Delivery tags in the order `poll` returned them (queue mode), for `commit`.
    tags: Vec<u64>,
    /// How many of `tags` are acknowledged already (destructive reads, after each flush).
    acked: u64,
    /// Queue mode: messages the queues held when reading began.
    initial: Option<u64>,
    /// The queue consumed (a tap's own, or the application's), asked about when all is quiet.
    queue: String,
    /// The last time the broker answered: a delivery or a probe.
    heard: Instant,
    probed: Instant,
    failing: Option<String>,
    what: String,
}

fn client(what: &str) -> impl Fn(lapin::Error) -> BusError + '_ {
    move |e| BusError::Client(format!("{what}: {e}"))
}

impl AmqpReader {
    pub(crate) fn open(
        a: &Amqp,
        sources: &[String],
        from: StartFrom,
        opts: &ReadOptions,
    ) -> Result<Self, BusError> {
        let stream = opts.queue == Some(QueueRead::Stream);
        // Where a stream read starts; other reads have no positions to start from.
        let stream_offset = match from {
            StartFrom::Beginning => AMQPValue::LongString("first".into()),
            StartFrom::End => AMQPValue::LongString("next".into()),
            StartFrom::Offset(n) => AMQPValue::LongLongInt(n),
            StartFrom::Time(us) => AMQPValue::Timestamp((us.max(0) / 1_000_000) as u64),
            StartFrom::Last(1) => AMQPValue::LongString("last".into()),
            StartFrom::Last(_) if stream => {
                return Err(BusError::Config(
                    "a stream starts from beginning (first), last, end (next), an offset or @TIME, not -N".into(),
                ))
            }
            StartFrom::Last(_) => AMQPValue::Void,
            StartFrom::Entry(..) | StartFrom::LastPerSubject => {
                return Err(BusError::Invalid(
                    "a RabbitMQ stream starts from beginning, last, end, an offset or @TIME".into(),
                ))
            }
        };
        let rt = super::runtime()?;
        let (conn, channel, deliveries, initial, queue) = rt.block_on(async {
            let conn = a.config.connect(&a.name, CONNECT_TIMEOUT).await?;
            let mut streams: Vec<Deliveries> = Vec::new();
            let mut initial = 0u64;
            for source in sources {
                // A failed passive declare closes its channel: check on a throwaway one.
                let probe = conn.create_channel().await.map_err(client("channel"))?;
                let unknown = |kind: &'static str| BusError::UnknownSource {
                    kind,
                    name: source.clone(),
                    connection: a.name.clone(),
                };
                let queue_name = if opts.queue.is_some() {
                    let q = super::passive_queue(&probe, source)
                        .await
                        .map_err(|_| unknown("queue"))?;
                    initial += u64::from(q.message_count());
                    if stream {
                        // Stream consumers need a prefetch window; acks only move it on.
                        probe
                            .basic_qos(1000, Default::default())
                            .await
                            .map_err(client("setting the prefetch"))?;
                    }
                    source.clone()
                } else {
                    if !super::passive_exchange(&probe, source).await {
                        return Err(unknown("exchange"));
                    }
                    let tap = probe
                        .queue_declare(
                            "".into(),
                            QueueDeclareOptions {
                                exclusive: true,
                                auto_delete: true,
                                ..Default::default()
                            },
                            FieldTable::default(),
                        )
                        .await
                        .map_err(client("declaring the tap queue"))?;
                    // Arguments matter only to headers exchanges, where `all` of no conditions
                    // matches every message.
                    let mut args = FieldTable::default();
                    args.insert("x-match".into(), AMQPValue::LongString("all".into()));
                    for (k, v) in &opts.match_headers {
                        args.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
                    }
                    let key = opts.binding_key.clone().unwrap_or_else(|| "#".into());
                    probe
                        .queue_bind(
                            tap.name().clone(),
                            source.as_str().into(),
                            key.as_str().into(),
                            QueueBindOptions::default(),
                            args,
                        )
                        .await
                        .map_err(client("binding the tap queue"))?;
                    tap.name().as_str().to_string()
                };
                let mut consume_args = FieldTable::default();
                if stream {
                    consume_args.insert("x-stream-offset".into(), stream_offset.clone());
                }
                let consumer = probe
                    .basic_consume(
                        queue_name.as_str().into(),
                        format!("sluice-{}", uuid::Uuid::new_v4().simple()).into(),
                        BasicConsumeOptions {
                            no_ack: opts.queue.is_none(),
                            ..Default::default()
                        },
                        consume_args,
                    )
                    .await
                    .map_err(client("consuming"))?;
                let name = source.clone();
                streams.push(consumer.map(move |d| (name.clone(), d)).boxed());
                // Queue mode acknowledges on this channel later; keep it (taps die with it).
                if opts.queue.is_some() && streams.len() > 1 {
                    return Err(BusError::Config(
                        "read one queue at a time (--from-queue)".into(),
                    ));
                }
                if streams.len() == sources.len() {
                    let d: Deliveries = select_all(streams).boxed();
                    return Ok((conn, probe, d, opts.queue.map(|_| initial), queue_name));
                }
            }
            Err(BusError::Config(
                "name at least one exchange or queue".into(),
            ))
        })?;
        Ok(AmqpReader {
            rt,
            conn,
            channel,
            deliveries,
            connection: a.name.clone(),
            run: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            seq: 0,
            mode: opts.queue,
            tags: Vec::new(),
            acked: 0,
            // A stream's end is not known from AMQP: it reads until stopped.
            initial: initial.filter(|_| opts.queue.is_some() && !stream),
            queue,
            heard: Instant::now(),
            probed: Instant::now(),
            failing: None,
            what: format!("RabbitMQ at {} ({})", a.config.host(), a.name),
        })
    }

    fn message(&mut self, source: String, d: Delivery) -> Message {
        self.seq += 1;
        if self.mode.is_some() {
            self.tags.push(d.delivery_tag);
        }
        let ts = d.properties.timestamp().map(|t| t as i64 * 1_000_000);
        // Stream messages have positions, so their ids are stable and re-reading one range
        // adds no duplicates (partition 0, like a one-partition topic).
        let stream_offset = d
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-stream-offset"))
            .and_then(|v| match v {
                AMQPValue::LongLongInt(n) => Some(*n),
                AMQPValue::LongInt(n) => Some(i64::from(*n)),
                _ => None,
            })
            .filter(|_| self.mode == Some(QueueRead::Stream));
        // A queue's message can come again (given back, or read by a capture that died before
        // acknowledging it): where the publisher named it, its id is the same each time, so the
        // capture can skip what the lake holds. The payload's hash keeps apart different
        // messages that a publisher gave the same id.
        let publisher_id = d
            .properties
            .message_id()
            .as_ref()
            .filter(|_| self.mode.is_some())
            .map(|mid| format!("mid-{mid}-{:016x}", fnv1a(&d.data)));
        Message {
            id: match (stream_offset, publisher_id) {
                (Some(_), _) => None,
                (None, Some(mid)) => Some(format!("amqp:{}/{}/{mid}", self.connection, source)),
                (None, None) => Some(format!(
                    "amqp:{}/{}/{}-{}",
                    self.connection, source, self.run, self.seq
                )),
            },
            partition: stream_offset.map(|_| 0),
            offset: stream_offset,
            sub_offset: None,
            properties: Some(properties::json_of(
                d.exchange.as_str(),
                d.routing_key.as_str(),
                d.redelivered,
                &d.properties,
            )),
            headers: properties::headers_of(&d.properties),
            source,
            key: None,
            timestamp_us: ts,
            payload: d.data,
        }
    }
}

impl Reader for AmqpReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let deliveries = &mut self.deliveries;
        let got = self.rt.block_on(async {
            let mut out = Vec::new();
            match tokio::time::timeout(timeout, deliveries.next()).await {
                Err(_) => return Ok(out),
                Ok(None) => {
                    return Err(
                        "the broker cancelled the consumer (was the queue deleted?)".to_string()
                    )
                }
                Ok(Some(d)) => out.push(d),
            }
            while out.len() < max {
                match deliveries.next().now_or_never() {
                    Some(Some(d)) => out.push(d),
                    _ => break,
                }
            }
            Ok(out)
        });
        let got = got.map_err(BusError::Client)?;
        let mut msgs = Vec::with_capacity(got.len());
        for (source, d) in got {
            let d = d.map_err(|e| self.lost(format!("reading {source}: {e}")))?;
            msgs.push(self.message(source, d));
        }
        if !msgs.is_empty() {
            self.heard = Instant::now();
            self.failing = None;
        } else if self.heard.elapsed() >= IDLE_PROBE && self.probed.elapsed() >= IDLE_PROBE {
            self.probe()?;
        }
        if self.mode == Some(QueueRead::Stream) {
            // Acknowledging a stream deletes nothing; it lets the broker send more.
            if let Some(tag) = self.tags.pop() {
                let ch = &self.channel;
                self.rt
                    .block_on(ch.basic_ack(tag, BasicAckOptions { multiple: true }))
                    .map_err(client("acknowledging the stream"))?;
            }
            self.tags.clear();
        }
        Ok(msgs)
    }

    fn at_end(&self) -> bool {
        self.initial.is_some_and(|n| self.seq >= n)
    }

    fn trouble(&self) -> Option<Trouble> {
        Some(Trouble {
            since: self.heard,
            what: self.what.clone(),
            reason: self.failing.clone()?,
        })
    }

    fn commit(&mut self, handled: u64) -> Result<(), BusError> {
        if self.mode == Some(QueueRead::Stream) {
            return Ok(());
        }
        let handled = handled.min(self.tags.len() as u64);
        // A tag acknowledged twice closes the channel: only what `acknowledge` has not done.
        let last_handled = (handled > self.acked).then(|| self.tags[handled as usize - 1]);
        let first_unhandled = self.tags.get(handled as usize).copied();
        self.settle(self.mode, last_handled, first_unhandled)
    }

    fn acknowledge(&mut self, durable: u64) -> Result<(), BusError> {
        if self.mode != Some(QueueRead::Destructive) || durable <= self.acked {
            return Ok(());
        }
        let Some(&tag) = self.tags.get(durable as usize - 1) else {
            return Ok(());
        };
        let ch = &self.channel;
        self.rt
            .block_on(async {
                tokio::time::timeout(
                    SETTLE_TIMEOUT,
                    ch.basic_ack(tag, BasicAckOptions { multiple: true }),
                )
                .await
            })
            .map_err(|_| self.no_settle())?
            .map_err(client("acknowledging"))?;
        self.acked = durable;
        Ok(())
    }
}

impl AmqpReader {
    /// A failure with the connection gone is the broker's (unreachable, named); one on a
    /// live connection is about the queue or channel.
    fn lost(&self, reason: String) -> BusError {
        if self.conn.status().connected() {
            BusError::Client(format!("{}: {reason}", self.what))
        } else {
            BusError::Unreachable {
                what: self.what.clone(),
                reason,
            }
        }
    }

    /// Asks the broker about the consumed queue: an answer clears any trouble, silence is
    /// trouble (the caller's timeout decides when to give up), and a refusal ends reading
    /// (the queue was deleted or the connection closed).
    fn probe(&mut self) -> Result<(), BusError> {
        self.probed = Instant::now();
        let (ch, queue) = (&self.channel, self.queue.as_str());
        let answer = self.rt.block_on(async {
            tokio::time::timeout(IDLE_PROBE, super::passive_queue(ch, queue)).await
        });
        match answer {
            Ok(Ok(_)) => {
                self.heard = Instant::now();
                self.failing = None;
                Ok(())
            }
            Ok(Err(e)) => Err(self.lost(format!("asking about queue {queue:?}: {e}"))),
            Err(_) => {
                self.failing = Some(format!(
                    "no answer within {} s about queue {queue:?}",
                    IDLE_PROBE.as_secs()
                ));
                Ok(())
            }
        }
    }

    /// Acknowledges (destructive) or gives back (requeue) up to `handled_tag`; anything after
    /// it was never stored and is always given back.
    fn settle(
        &mut self,
        mode: Option<QueueRead>,
        handled_tag: Option<u64>,
        unhandled: Option<u64>,
    ) -> Result<(), BusError> {
        let Some(mode) = mode else { return Ok(()) };
        let ch = &self.channel;
        let settling = async {
            if let Some(tag) = handled_tag {
                match mode {
                    QueueRead::Destructive => ch
                        .basic_ack(tag, BasicAckOptions { multiple: true })
                        .await
                        .map_err(client("acknowledging"))?,
                    QueueRead::Requeue | QueueRead::Stream => ch
                        .basic_nack(
                            tag,
                            BasicNackOptions {
                                multiple: true,
                                requeue: true,
                            },
                        )
                        .await
                        .map_err(client("giving messages back"))?,
                }
            }
            if unhandled.is_some() {
                ch.basic_nack(
                    0,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await
                .map_err(client("giving messages back"))?;
            }
            let _ = ch.close(200, "sluice done".into()).await;
            Ok::<_, BusError>(())
        };
        self.rt
            .block_on(async { tokio::time::timeout(SETTLE_TIMEOUT, settling).await })
            .map_err(|_| self.no_settle())??;
        self.tags.clear();
        Ok(())
    }

    /// Unacknowledged messages go back to their queue when the connection closes.
    fn no_settle(&self) -> BusError {
        BusError::Unreachable {
            what: self.what.clone(),
            reason: format!(
                "no answer within {} s while settling what was read: messages not \
                 acknowledged go back to the queue when the connection closes",
                SETTLE_TIMEOUT.as_secs()
            ),
        }
    }
}

/// FNV-1a, 64 bits: stable across builds and Rust versions (std's hasher promises neither),
/// for ids that must come out the same in every capture.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Drop for AmqpReader {
    fn drop(&mut self) {
        super::close(&self.rt, &self.conn);
    }
}

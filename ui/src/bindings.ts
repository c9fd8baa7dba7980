// Generated from the Rust API types by `sluice dev bindings`; do not edit.
// A test fails when this file is out of date (see crates/api/src/commands/table.rs).

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;

export type ApiError = { code: ErrorCode, message: string, 
/**
 * The file the problem is in (a schema, an edit file), as the message names it.
 */
file?: string, 
/**
 * 1-based line in `file`.
 */
line?: number, 
/**
 * 1-based column: in the filter for a filter error, else on `line` of `file`.
 */
column?: number, };
export type ErrorCode = "invalid_input" | "not_found" | "already_exists" | "unreachable" | "auth_failed" | "schema" | "filter" | "lake" | "bus" | "config" | "io" | "forbidden" | "timeout" | "delivery_failed" | "busy";
export type NoArgs = Record<symbol, never>;
export type NameArgs = { name: string, };
export type AppInfo = { version: string, config_dir: string, lake_dir: string, };
export type LakeOpenArgs = { path: string, };
export type BusKind = { 
/**
 * The `bus` tag of its settings (`kafka`, `amqp`, `sqs`).
 */
bus: string, 
/**
 * What a person calls it: `Kafka`, `RabbitMQ (AMQP)`.
 */
label: string, 
/**
 * What it reads from, singular and plural: `topic`/`topics`, `queue`/`queues`.
 */
source_noun: string, sources_noun: string, 
/**
 * The fields of `connection_add` this bus uses, in form order.
 */
fields: Array<Field>, 
/**
 * How its sources can be read, the default first; empty when there is one way only.
 */
read_modes: Array<ReadMode>, 
/**
 * What the window says above its list of sources, when the list is not the whole story
 * (MQTT has no topic listing).
 */
listing_note?: string, capabilities: Capabilities, };
export type Field = { name: string, label: string, kind: FieldKind, required: boolean, placeholder?: string, help?: string, 
/**
 * `choice` fields: the values offered (`""` is none); empty for other kinds.
 */
choices: Array<string>, 
/**
 * Shown only while this other field is set (a password once SASL is chosen).
 */
shown_with?: string, };
export type FieldKind = "text" | "secret" | "secret_lines" | "flag" | "file" | "choice";
export type ReadMode = { name: string, label: string, 
/**
 * Whether reading this way takes messages from the application's queue.
 */
takes_messages: boolean, };
export type Capabilities = { 
/**
 * Sources can be read (tailed, captured); an HTTP endpoint is a replay destination only.
 */
reads: boolean, 
/**
 * Reading listens for clients that push events (a collector): the sources are whatever
 * they name (a capture may name none), events may carry ids of the clients' own that come
 * again on a retry, and each client waits until its events are durable, so the lake
 * writes often.
 */
listens: boolean, 
/**
 * A read can reach the end of what a source held when it began (`--stop-at-end`); MQTT
 * keeps no history, so its reads never end by themselves.
 */
ends: boolean, 
/**
 * A replay destination names what to send to (`CONNECTION:TOPIC`); an HTTP endpoint's
 * target is an optional path.
 */
needs_target: boolean, 
/**
 * Messages have stable positions (offsets) to start from and to deduplicate by.
 */
positions: boolean, 
/**
 * Sources have numbered partitions that a replay can keep.
 */
partitions: boolean, 
/**
 * Messages have a key (Kafka's key, an SQS FIFO group id).
 */
keys: boolean, 
/**
 * Messages are published with a routing key.
 */
routing_keys: boolean, 
/**
 * Messages carry bus properties of their own (AMQP properties, SQS attributes).
 */
properties: boolean, 
/**
 * The broker stamps each message with the time it took it.
 */
broker_timestamps: boolean, 
/**
 * The bus confirms each message it holds (acks, publisher confirms, send responses).
 */
delivery_confirms: boolean, 
/**
 * The bus can say which sources feed a dead-letter source (SQS redrive policies).
 */
dead_letter_sources: boolean, 
/**
 * Largest message the bus accepts, when the bus itself fixes it (not a broker setting).
 */
max_message_bytes: number | null, 
/**
 * Most headers a message may carry, when the bus limits it.
 */
max_headers: number | null, };
export type ConnectionSummary = { name: string, bus: string, brokers: string, auth: string, tls: boolean, 
/**
 * The schema registry's URL, when the connection has one.
 */
registry: string | null, };
export type ConnectionAdd = { name: string, password: string | null, registry_url: string | null, registry_username: string | null, registry_password: string | null, registry_token: string | null, replace: boolean, } & ({ "bus": "kafka" } & KafkaSettings | { "bus": "amqp" } & AmqpSettings | { "bus": "sqs" } & SqsSettings | { "bus": "nats" } & NatsSettings | { "bus": "mqtt" } & MqttSettings | { "bus": "redis" } & RedisSettings | { "bus": "http" } & HttpSettings | { "bus": "collector" } & CollectorSettings | { "bus": "postgres" } & PostgresSettings);
export type Settings = { "bus": "kafka" } & KafkaSettings | { "bus": "amqp" } & AmqpSettings | { "bus": "sqs" } & SqsSettings | { "bus": "nats" } & NatsSettings | { "bus": "mqtt" } & MqttSettings | { "bus": "redis" } & RedisSettings | { "bus": "http" } & HttpSettings | { "bus": "collector" } & CollectorSettings | { "bus": "postgres" } & PostgresSettings;
export type KafkaSettings = { 
/**
 * `HOST:PORT[,HOST:PORT...]`
 */
brokers: string, 
/**
 * `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (PLAIN when only a username is given).
 */
sasl_mechanism: string | null, 
/**
 * Files written before settings were typed call it `sasl_username`.
 */
username: string | null, 
/**
 * Implied by `tls_ca` or `tls_cert`.
 */
tls: boolean, tls_ca: string | null, tls_cert: string | null, tls_key: string | null, };
export type AmqpSettings = { 
/**
 * `amqp[s]://USER@HOST:PORT/VHOST`; files written before settings were typed call it
 * `brokers`.
 */
url: string, 
/**
 * The management HTTP API (default `http://HOST:15672`).
 */
management_url: string | null, };
export type SqsSettings = { region: string, aws_profile: string | null, 
/**
 * Another SQS-compatible endpoint (LocalStack, moto, ElasticMQ).
 */
endpoint_url: string | null, 
/**
 * Files written before settings were typed call it `sasl_username`.
 */
access_key_id: string | null, };
export type NatsSettings = { 
/**
 * `nats://HOST:PORT[,nats://HOST:PORT...]` (`tls://` for TLS).
 */
url: string, username: string | null, 
/**
 * `none`, `user`, `token`, `nkey` or `creds`; inferred when left out.
 */
auth: string | null, 
/**
 * A `.creds` file (user JWT and NKey seed) for `auth = creds`.
 */
creds_file: string | null, 
/**
 * Implied by `tls_ca`, `tls_cert` or a `tls://` URL.
 */
tls: boolean, tls_ca: string | null, tls_cert: string | null, tls_key: string | null, };
export type MqttSettings = { 
/**
 * `mqtt://HOST:PORT` or `mqtts://HOST:PORT` (TLS).
 */
url: string, username: string | null, 
/**
 * Implied by `mqtts://`, `tls_ca` or `tls_cert`.
 */
tls: boolean, tls_ca: string | null, tls_cert: string | null, tls_key: string | null, 
/**
 * `5` (default) or `3.1.1`.
 */
version: string, 
/**
 * Prefix of the client id (a random suffix is added per connection).
 */
client_id: string | null, };
export type RedisSettings = { 
/**
 * `redis[s]://[USER@]HOST:PORT/DB`; the CLI sends it as `brokers`.
 */
url: string, 
/**
 * ACL user (Redis 6+), when the URL names none.
 */
username: string | null, 
/**
 * Implied by `rediss://`, `tls_ca` or `tls_cert`.
 */
tls: boolean, tls_ca: string | null, tls_cert: string | null, tls_key: string | null, 
/**
 * The stream entry field that is the payload; default the first of `payload`, `data`,
 * `body` an entry has.
 */
payload_field: string | null, };
export type HttpSettings = { url: string, 
/**
 * `POST` (default), `PUT` or `PATCH`.
 */
method: string, 
/**
 * Longest wait for each phase of one request (connect, send, answer), in milliseconds.
 */
timeout_ms: string, 
/**
 * `raw` (default), `cloudevents-binary` or `cloudevents-structured`.
 */
body: string, 
/**
 * Requests in flight at once.
 */
concurrency: string, };
export type CollectorSettings = { 
/**
 * `HOST:PORT` for `POST /v1/events/{source}`; empty listens for no HTTP (when gRPC is
 * named) or on 127.0.0.1:7880.
 */
http: string, 
/**
 * `HOST:PORT` for the gRPC service `sluice.collector.v1.Collector`; empty: no gRPC.
 */
grpc: string, 
/**
 * Largest request body (bytes) before a 413; 16 MiB when empty.
 */
max_body_bytes: string, };
export type PostgresSettings = { 
/**
 * `postgres://USER@HOST:PORT/DB`; the CLI sends it as `brokers`.
 */
url: string, 
/**
 * A logical replication slot (pgoutput) of the user's own to read; default Sluice's
 * `sluice_CONNECTION_DATABASE`.
 */
slot: string | null, 
/**
 * The publication that slot reads; default Sluice's `sluice_CONNECTION_DATABASE`.
 */
publication: string | null, };
export type ConnectionAdded = { name: string, password_store: PasswordStore | null, 
/**
 * Set when the password had to go into the config file.
 */
warning: string | null, };
export type PasswordStore = "keyring" | "file";
export type Health = { brokers: Array<string>, sources: number, latency_ms: number, 
/**
 * What the connection's schema registry answered, when it has one (filled in above the
 * bus: a connector knows nothing of registries).
 */
registry: string | null, };
export type TopicsArgs = { name: string, only?: Array<string>, };
export type SourceInfo = { name: string, internal: boolean, partitions: Array<PartitionInfo>, 
/**
 * What it is where a bus has several kinds: `exchange (topic)`, `queue (quorum)`...
 */
kind?: string, 
/**
 * Queues: messages ready for delivery, delivered but not acknowledged, and consumers.
 */
ready?: number, unacked?: number, consumers?: number, 
/**
 * SQS: messages delayed, not yet visible.
 */
delayed?: number, 
/**
 * Bytes the source holds (a JetStream stream).
 */
bytes?: number, 
/**
 * The subjects a JetStream stream takes.
 */
subjects: Array<string>, 
/**
 * How the source keeps messages: a JetStream stream's `limits`, `interest`, `workqueue`.
 */
retention?: string, 
/**
 * The first and last positions as the bus writes them, where they are not one number per
 * partition (a Redis stream's entry ids).
 */
first?: string, last?: string, 
/**
 * When its last message was seen (RFC 3339), where the bus keeps no count of its own
 * (MQTT: during the look at `#`; a retained message shows when it was seen).
 */
last_seen?: string, 
/**
 * The applications' consumers of the source (JetStream consumers, Redis consumer groups)
 * with what they have yet to read or acknowledge; Sluice is never one of them.
 */
groups: Array<ConsumerInfo>, 
/**
 * Something about the source a person should act on (an inactive PostgreSQL slot that
 * holds WAL back).
 */
warning?: string, };
export type PartitionInfo = { id: number, low: number, high: number, };
export type ConsumerInfo = { name: string, 
/**
 * Messages not yet delivered to it (JetStream) or delivered and not acknowledged (a
 * Redis group's pending entries).
 */
pending: number, 
/**
 * JetStream: delivered, not yet acknowledged.
 */
ack_pending?: number, 
/**
 * Redis: the group's consumers.
 */
consumers?: number, 
/**
 * Redis: the last entry id delivered to the group.
 */
last_delivered?: string, };
export type SchemaListing = { message_types: Array<string>, mappings: Array<Mapping>, };
export type Mapping = { connection: string, topic: string, value_type: string, key_type?: string | null, 
/**
 * Kept with the lake (`LAKE/_sluice/mappings.toml`) for everyone who opens it, rather
 * than in this user's config; a mapping of the user's own for the same source wins.
 */
shared?: boolean, };
export type DroppedFile = { path: string, base64: string, };
export type SchemaDropArgs = { files: Array<DroppedFile>, };
export type SchemaAdded = { files: Array<string>, message_types: Array<string>, errors: Array<SchemaProblem>, 
/**
 * Every message type the added files define, new or changed: topics mapped to one of
 * them are re-decoded.
 */
defined_types: Array<string>, 
/**
 * Jobs re-decoding topics mapped to the added types (started by the app; the CLI
 * re-decodes in the foreground).
 */
redecoding: Array<number>, };
export type SchemaProblem = { file: string | null, line: number | null, column: number | null, message: string, 
/**
 * `file:line:col: message`, ready to print.
 */
display: string, };
export type SchemaMapArgs = { connection: string, topic: string, value_type: string, key_type: string | null, 
/**
 * Keep the mapping with the lake, for everyone who opens it.
 */
shared?: boolean, };
export type ReplayEdit = { 
/**
 * The event's id; none means "the one event the filter matches".
 */
id: string | null, decoded: JsonValue, };
export type SourceArgs = { connection: string, topic: string, };
export type SchemaDetectArgs = { connection: string, topic: string, 
/**
 * Payloads to score the types on (200 when not given).
 */
sample?: number, };
export type MappingSet = { mapping: Mapping, redecode_job: number, };
export type RedecodeProgress = { files_done: number, files_total: number, events: number, 
/**
 * Events whose decoded JSON, text or error changed.
 */
changed: number, 
/**
 * Events that now carry a decode error.
 */
errors: number, };
export type Candidate = { type_name: string, 
/**
 * 0 to 1: the share of wire fields, over all samples, that fit the type.
 */
confidence: number, 
/**
 * Samples that decode as this type without error.
 */
decoded: number, samples: number, 
/**
 * Fields the type (and the message types the samples reach in it) declares that no
 * sample uses: between types that fit equally, the one the samples use most completely
 * is the likelier.
 */
unseen_fields: number, 
/**
 * Fits exactly as well as the candidate next to it, by every measure: the samples cannot
 * tell them apart, so pick by name.
 */
tied: boolean, };
export type ReadArgs = { connection: string, sources: Array<string>, 
/**
 * `beginning`, `end`, `last`, `OFFSET`, `-N` or `@RFC3339`.
 */
from: string | null, mode: string | null, binding_key: string | null, max_messages: number | null, stop_at_end: boolean, 
/**
 * RabbitMQ headers exchanges: only messages whose header `K` is `V`.
 */
match_headers?: Array<[string, string]>, 
/**
 * Capture: stop after this long.
 */
duration_ms?: number, 
/**
 * Capture: give up (keeping what was read) when the bus answers nothing for this long
 * (30 s when not given).
 */
broker_timeout_ms?: number, 
/**
 * Capture: also keep events that this lake replayed.
 */
include_replays?: boolean, 
/**
 * Capture: larger payloads are stored cut and flagged `truncated` (8 MiB when not given).
 */
max_payload_bytes?: number, 
/**
 * Capture: store payloads undecoded, the fastest capture; `redecode` decodes them later.
 */
no_decode?: boolean, 
/**
 * Capture of a collector: listen for HTTP here (`HOST:PORT`, `:PORT`, `PORT`) instead of
 * at the connection's address; naming only one of `http` and `grpc` listens for that one.
 */
http?: string, 
/**
 * Capture of a collector: the same for gRPC.
 */
grpc?: string, 
/**
 * Capture of PostgreSQL: make Sluice's own replication slot and publication when missing.
 */
create_slot?: boolean, 
/**
 * Capture of PostgreSQL: drop Sluice's own slot and publication at the end.
 */
drop_slot?: boolean, 
/**
 * Capture of PostgreSQL: read the tables' rows first, as of the new slot's start.
 */
snapshot?: boolean, };
export type JobArgs = { id: number, };
export type JobPollArgs = { id: number, after: number, wait_ms: number, };
export type JobPauseArgs = { id: number, paused: boolean, };
export type JobInfo = { id: number, 
/**
 * `tail`, `capture`, `replay` or `redecode`.
 */
kind: string, 
/**
 * What it reads or sends, for the jobs list.
 */
label: string, running: boolean, paused: boolean, progress: JsonValue, error: ApiError | null, };
export type JobUpdate = { events: Array<EventView>, 
/**
 * Pass back as `after` to get what follows.
 */
next: number, 
/**
 * Events that fell out of the buffer before this poller saw them.
 */
dropped: number, job: JobInfo, result: JsonValue | null, };
export type EventView = { id: string, bus: string, connection: string, source: string, partition: number | null, offset: number | null, 
/**
 * The second number of a two-part position: a Redis entry id is `offset-sub_offset`.
 */
sub_offset?: number, timestamp: string | null, timestamp_us: number | null, captured_at: string, key: string | null, key_text: string | null, key_decoded: JsonValue, headers: JsonValue, schema: string | null, encoding: string, decoded: JsonValue, decode_error: string | null, payload: string, payload_text: string | null, size: number, truncated: boolean, properties: JsonValue, };
export type CaptureProgress = { 
/**
 * Messages taken from the bus.
 */
read: number, 
/**
 * Events durably in the lake (flushed and renamed into place).
 */
captured: number, 
/**
 * Payload bytes read.
 */
bytes: number, decode_errors: number, truncated: number, skipped_replays: number, 
/**
 * Already in the lake from an earlier capture of the same offsets.
 */
skipped_duplicates: number, files: number, elapsed_ms: number, 
/**
 * Why the capture ended: "end", "max-messages", "duration" or "interrupted".
 */
stopped_by: string | null, 
/**
 * Where a capture that listens (a collector) takes events, and the token this run drew.
 */
listening?: Listening, 
/**
 * What the reader did or left that a person should know (a replication slot made, or
 * left holding WAL), when the capture ended.
 */
notes: Array<string>, };
export type Listening = { 
/**
 * `http://ADDR/v1/events/{source}`, with the port actually bound.
 */
http: string | null, 
/**
 * `HOST:PORT` of the gRPC service.
 */
grpc: string | null, 
/**
 * The bearer token clients must send, when this run drew it (a connection's own token,
 * from the keyring, is never repeated here).
 */
token: string | null, };
export type ReplayProgress = { queued: number, sent: number, failed: number, unknown: number, elapsed_ms: number, 
/**
 * Set on the last report only, which then carries the whole account.
 */
done: boolean, matched: number, not_sent: number, };
export type ReplaySummary = { matched: number, sent: number, failed: number, unknown: number, not_sent: number, 
/**
 * Event id and reason for failed events (the first thousand).
 */
errors: Array<[string, string]>, 
/**
 * Event id and reason for events whose outcome is unknown (the first thousand).
 */
unknowns: Array<[string, string]>, interrupted: boolean, elapsed_ms: number, 
/**
 * From the first message handed to the destination to its last report: the
 * destination's side of the replay, without the time spent choosing and reading the
 * events from the lake first. `None` when nothing was handed over.
 */
sending_ms: number | null, };
export type FilterArgs = { filter: string, };
export type SearchArgs = { filter: string, offset: number, limit: number | null, };
export type SearchPage = { offset: number, rows: Array<EventRow>, };
export type EventRow = { id: string, bus: string, connection: string, source: string, partition: number | null, offset: number | null, 
/**
 * The second number of a two-part position (a Redis entry id is `offset-sub_offset`).
 */
sub_offset?: number, timestamp: string | null, key_text: string | null, schema: string | null, encoding: string, 
/**
 * The start of the decoded JSON or text payload.
 */
preview: string, size: number, decode_error: boolean, };
export type HistogramArgs = { filter: string, buckets: number | null, };
export type Histogram = { start_us: number, bucket_us: number, counts: Array<number>, };
export type IdArgs = { id: string, };
export type ReplayArgs = { filter: string, 
/**
 * Only these events (the rows ticked in a result), within the filter: any number up to
 * 100,000, where an `event.id in (...)` filter holds 1,024.
 */
ids?: Array<string>, 
/**
 * `CONNECTION:TOPIC`, `CONNECTION:EXCHANGE[/ROUTING_KEY]` or `CONNECTION:QUEUE`.
 */
to: string, to_origin: boolean, rate: number | null, limit: number | null, keep_partition: boolean, 
/**
 * Events to send as edited in the replay dialog.
 */
edits: Array<ReplayEdit>, 
/**
 * Give up on a destination that answers nothing for this long (30 s when not given).
 */
broker_timeout_ms?: number, 
/**
 * MQTT: publish events that were retained as retained (never by default).
 */
retain?: boolean, 
/**
 * Redis streams: write each entry with its original id, into an empty stream only.
 */
keep_ids?: boolean, };
export type ReplayPlan = { total: number, 
/**
 * Events redacted at capture (they carry `sluice-redacted`): their redacted values are
 * sent as the lake holds them.
 */
redacted: number, 
/**
 * The first events only (the table shows these; `total` counts all).
 */
rows: Array<PlanRow>, };
export type PlanRow = { id: string, source: string, destination: string, key_text: string | null, preview: string, size: number, };
export type ReplayRecord = { started_at: string, filter: string, to: string, matched: number, sent: number, failed: number, 
/**
 * Sent with no answer: they may have arrived (absent from records older than it).
 */
unknown: number, 
/**
 * Matched but never handed to the bus (the replay stopped first).
 */
not_sent: number, interrupted: boolean, error: string | null, };
export type ExportArgs = { filter: string, 
/**
 * `jsonl`, `csv` or `parquet`.
 */
format: string, path: string, };
export type LakeScopeArgs = { connection?: string, source?: string, };
export type CompactArgs = { 
/**
 * Merged files grow to about this size (`64MiB` by default).
 */
target_size?: string, dry_run: boolean, connection?: string, source?: string, };
export type PruneArgs = { 
/**
 * `30d`, `12h`, `2w`: events older than this go.
 */
older_than: string, dry_run: boolean, connection?: string, source?: string, };
export type CompactReport = { dry_run: boolean, 
/**
 * Partition folders looked at.
 */
folders: number, 
/**
 * Small files merged, and the files they became.
 */
files_merged: number, files_written: number, 
/**
 * Events in the merged files (all of them are in the new ones).
 */
events: number, bytes_before: number, bytes_after: number, 
/**
 * Files left as they were: not written by Sluice, or by a newer Sluice.
 */
files_skipped: number, 
/**
 * Files left unmerged because searches kept the lake busy for the whole wait; a later
 * run merges them.
 */
left_for_later: number, };
export type PruneReport = { dry_run: boolean, folders: number, 
/**
 * Files whose every event was older than the cutoff.
 */
files_removed: number, 
/**
 * Files holding events on both sides of it, written again with the newer ones only.
 */
files_rewritten: number, events_removed: number, bytes_removed: number, files_skipped: number, 
/**
 * Files left as they were because searches kept the lake busy for the whole wait; a
 * later run prunes them.
 */
left_for_later: number, };
export type BundleExportArgs = { filter: string, path: string, };
export type BundleImportArgs = { path: string, };
export type BundleManifest = { format: string, version: number, 
/**
 * The Sluice that wrote it.
 */
sluice_version: string, created_at: string, filter: string, events: number, sources: Array<SourceCount>, mappings: Array<Mapping>, 
/**
 * Member names under `schemas/`.
 */
schemas: Array<string>, };
export type BundleImported = { events_in_bundle: number, imported: number, 
/**
 * Events whose ids the lake held already (a bundle imported twice adds nothing).
 */
already_in_lake: number, 
/**
 * Rows of the bundle without an id, or repeating one: not imported.
 */
skipped_in_bundle: number, schema_files: number, mappings_added: number, 
/**
 * Mappings of the bundle left out because this machine maps the same source itself.
 */
mappings_kept_local: number, manifest: BundleManifest, };
export type SourceCount = { connection: string, source: string, bus: string, events: number, 
/**
 * The message types their payloads decoded with.
 */
schemas: Array<string>, };
export type RedactRemoveArgs = { 
/**
 * As `redact_list` numbers the rules, from 1.
 */
index: number, };
export type RedactRule = { connection: string, 
/**
 * One source (topic, queue, ...); every source of the connection when absent.
 */
source?: string, 
/**
 * Decoded field paths: `customer.email`, `items[*].card`, `lines[0].iban`.
 */
fields?: Array<string>, 
/**
 * Header names (any case).
 */
headers?: Array<string>, 
/**
 * Regular expressions over every text value: decoded strings, payload text, header values.
 */
patterns?: Array<string>, action: RedactAction, at: RedactAt, };
export type RedactAction = "hash" | "drop";
export type RedactAt = "capture" | "view";

export type Commands = {
  app_info: { args: NoArgs; result: AppInfo };
  lake_open: { args: LakeOpenArgs; result: AppInfo };
  bus_kinds: { args: NoArgs; result: Array<BusKind> };
  connection_list: { args: NoArgs; result: Array<ConnectionSummary> };
  connection_get: { args: NameArgs; result: ConnectionAdd };
  connection_add: { args: ConnectionAdd; result: ConnectionAdded };
  connection_test: { args: NameArgs; result: Health };
  connection_remove: { args: NameArgs; result: null };
  topics: { args: TopicsArgs; result: Array<SourceInfo> };
  schema_list: { args: NoArgs; result: SchemaListing };
  schema_drop: { args: SchemaDropArgs; result: SchemaAdded };
  schema_map: { args: SchemaMapArgs; result: MappingSet };
  redecode: { args: SourceArgs; result: number };
  schema_detect: { args: SchemaDetectArgs; result: Array<Candidate> };
  tail_start: { args: ReadArgs; result: number };
  capture_start: { args: ReadArgs; result: number };
  job_poll: { args: JobPollArgs; result: JobUpdate };
  job_stop: { args: JobArgs; result: null };
  job_pause: { args: JobPauseArgs; result: null };
  job_list: { args: NoArgs; result: Array<JobInfo> };
  filter_check: { args: FilterArgs; result: null };
  search: { args: SearchArgs; result: SearchPage };
  count: { args: FilterArgs; result: number };
  histogram: { args: HistogramArgs; result: Histogram };
  fields: { args: NoArgs; result: Array<string> };
  event_get: { args: IdArgs; result: EventView };
  replay_plan: { args: ReplayArgs; result: ReplayPlan };
  replay_start: { args: ReplayArgs; result: number };
  replay_history: { args: NoArgs; result: Array<ReplayRecord> };
  export: { args: ExportArgs; result: number };
  lake_compact: { args: CompactArgs; result: CompactReport };
  lake_prune: { args: PruneArgs; result: PruneReport };
  bundle_export: { args: BundleExportArgs; result: BundleManifest };
  bundle_import: { args: BundleImportArgs; result: BundleImported };
  redact_list: { args: NoArgs; result: Array<RedactRule> };
  redact_add: { args: RedactRule; result: Array<RedactRule> };
  redact_remove: { args: RedactRemoveArgs; result: Array<RedactRule> };
};

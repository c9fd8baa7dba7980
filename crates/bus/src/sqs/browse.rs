//! Health and listings: queues with approximate visible / in-flight / delayed counts, the FIFO
//! flag, and which queue dead-letters into which (RedrivePolicy).

use super::{sdk_err, Sqs};
use crate::{BusError, Health, SourceInfo};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(crate) fn check(a: &Sqs, timeout: Duration) -> Result<Health, BusError> {
    let start = Instant::now();
    let urls = super::runtime()?.block_on(async {
        let client = a.config.client(timeout).await;
        queue_urls(a, &client).await
    })?;
    Ok(Health {
        brokers: vec![a.config.place()],
        sources: urls.len(),
        latency_ms: start.elapsed().as_millis() as u64,
        registry: None,
    })
}

async fn queue_urls(a: &Sqs, client: &Client) -> Result<Vec<String>, BusError> {
    let mut urls = Vec::new();
    let mut next = None;
    loop {
        let out = client
            .list_queues()
            .max_results(1000)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| sdk_err(a, "listing queues", e))?;
        urls.extend(out.queue_urls().iter().cloned());
        next = out.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(urls);
        }
    }
}

pub(crate) fn name_of(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_string()
}

async fn describe(a: &Sqs, client: &Client, url: &str) -> Result<SourceInfo, BusError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| sdk_err(a, "reading queue attributes", e))?;
    let empty = HashMap::new();
    let attrs = out.attributes().unwrap_or(&empty);
    let get = |k: QueueAttributeName| attrs.get(&k).cloned();
    let n = |k: QueueAttributeName| get(k).and_then(|v| v.parse::<i64>().ok());
    let fifo = get(QueueAttributeName::FifoQueue).as_deref() == Some("true");
    let mut kind = format!("queue ({})", if fifo { "fifo" } else { "standard" });
    if let Some(policy) = get(QueueAttributeName::RedrivePolicy) {
        let p: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
        let target = p
            .get("deadLetterTargetArn")
            .and_then(|t| t.as_str())
            .map(|arn| arn.rsplit(':').next().unwrap_or(arn).to_string())
            .unwrap_or_default();
        let max = p
            .get("maxReceiveCount")
            .map(|m| m.as_str().map_or(m.to_string(), str::to_string))
            .unwrap_or_default();
        kind = format!("{kind}, dead letters to {target} after {max} receives");
    }
    Ok(SourceInfo {
        name: name_of(url),
        kind: Some(kind),
        ready: n(QueueAttributeName::ApproximateNumberOfMessages),
        unacked: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ..Default::default()
    })
}

pub(crate) fn sources(a: &Sqs, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
    super::runtime()?.block_on(async {
        let client = a.config.client(timeout).await;
        let mut out = Vec::new();
        for url in queue_urls(a, &client).await? {
            out.push(describe(a, &client, &url).await?);
        }
        out.sort_by(|x, y| x.name.cmp(&y.name));
        Ok(out)
    })
}

/// The queue's URL, or `None` when it does not exist.
pub(crate) async fn url_of(
    a: &Sqs,
    client: &Client,
    name: &str,
) -> Result<Option<String>, BusError> {
    if name.starts_with("https://") || name.starts_with("http://") {
        return Ok(Some(name.to_string()));
    }
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_string)),
        Err(e) => {
            let text = format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e));
            if text.contains("NonExistentQueue") || text.contains("does not exist") {
                Ok(None)
            } else {
                Err(sdk_err(a, "finding the queue", e))
            }
        }
    }
}

pub(crate) fn source(
    a: &Sqs,
    name: &str,
    timeout: Duration,
) -> Result<Option<SourceInfo>, BusError> {
    super::runtime()?.block_on(async {
        let client = a.config.client(timeout).await;
        match url_of(a, &client, name).await? {
            Some(url) => Ok(Some(describe(a, &client, &url).await?)),
            None => Ok(None),
        }
    })
}

pub(crate) fn dead_letter_sources(
    a: &Sqs,
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>, BusError> {
    super::runtime()?.block_on(async {
        let client = a.config.client(timeout).await;
        let Some(url) = url_of(a, &client, name).await? else {
            return Ok(Vec::new());
        };
        let out = client
            .list_dead_letter_source_queues()
            .queue_url(url)
            .send()
            .await
            .map_err(|e| sdk_err(a, "listing dead-letter sources", e))?;
        Ok(out.queue_urls().iter().map(|u| name_of(u)).collect())
    })
}

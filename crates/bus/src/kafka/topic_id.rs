//! Topic ids (KIP-516), which tell a recreated topic from the one a capture began on: the
//! name, the partitions and (on tansu) the watermarks can all look the same after a delete and
//! a create, and librdkafka reports nothing when it reads on into the new topic. rdkafka has no
//! binding for DescribeTopics, so this calls librdkafka's admin API directly.

use rdkafka::bindings as rd;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

/// A DescribeTopics request in flight, answered on its own queue: a capture sends one and
/// looks for the answer on later polls, so a broker slow to answer never holds up reading.
pub(crate) struct IdRequest {
    queue: *mut rd::rd_kafka_queue_t,
    options: *mut rd::rd_kafka_AdminOptions_t,
    collection: *mut rd::rd_kafka_TopicCollection_t,
    pub(crate) sent: Instant,
}

// SAFETY: librdkafka's queues and admin objects may be used from any thread; the request is
// used from one thread at a time (the capture's polling thread).
unsafe impl Send for IdRequest {}

impl IdRequest {
    /// Asks for each topic's id; `timeout` bounds the broker's answer.
    pub(crate) fn send(
        rk: *mut rd::rd_kafka_t,
        topics: &[&str],
        timeout: Duration,
    ) -> Result<Self, String> {
        let names: Vec<CString> = topics
            .iter()
            .map(|t| CString::new(*t).map_err(|_| format!("topic {t:?} holds a NUL byte")))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const std::os::raw::c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: librdkafka copies the names into the collection; every object made here is
        // destroyed once, in Drop, after the last use of what it owns.
        unsafe {
            let queue = rd::rd_kafka_queue_new(rk);
            let collection =
                rd::rd_kafka_TopicCollection_of_topic_names(ptrs.as_mut_ptr(), ptrs.len());
            let options = rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            );
            let mut errstr = [0 as std::os::raw::c_char; 256];
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options,
                ms,
                errstr.as_mut_ptr(),
                errstr.len(),
            );
            rd::rd_kafka_DescribeTopics(rk, collection, options, queue);
            Ok(IdRequest {
                queue,
                options,
                collection,
                sent: Instant::now(),
            })
        }
    }

    /// The answer, waiting at most `wait` for it: `None` while there is none yet.
    pub(crate) fn answer(&self, wait: Duration) -> Option<Result<HashMap<String, String>, String>> {
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the event is read, then destroyed once; what the result holds is copied out.
        unsafe {
            let event = rd::rd_kafka_queue_poll(self.queue, ms);
            if event.is_null() {
                return None;
            }
            let out = read_result(event);
            rd::rd_kafka_event_destroy(event);
            Some(out)
        }
    }
}

impl Drop for IdRequest {
    fn drop(&mut self) {
        // SAFETY: made in `send`, destroyed only here; librdkafka allows destroying the queue
        // of a request still in flight (its answer is then discarded).
        unsafe {
            rd::rd_kafka_AdminOptions_destroy(self.options);
            rd::rd_kafka_TopicCollection_destroy(self.collection);
            rd::rd_kafka_queue_destroy(self.queue);
        }
    }
}

/// Each topic's id as the broker gives it (base64), for the topics it knows and names an id
/// for (a broker too old for topic ids gives none, and then nothing can be compared), waiting
/// at most `timeout`.
pub(crate) fn topic_ids(
    rk: *mut rd::rd_kafka_t,
    topics: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, String>, String> {
    let req = IdRequest::send(rk, topics, timeout)?;
    req.answer(timeout + Duration::from_millis(500))
        .unwrap_or_else(|| Err(format!("no answer to DescribeTopics within {timeout:?}")))
}

/// SAFETY: `event` is a live DescribeTopics result event.
unsafe fn read_result(event: *mut rd::rd_kafka_event_t) -> Result<HashMap<String, String>, String> {
    if rd::rd_kafka_event_error(event) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        let why = rd::rd_kafka_event_error_string(event);
        return Err(if why.is_null() {
            "DescribeTopics failed".to_string()
        } else {
            CStr::from_ptr(why).to_string_lossy().into_owned()
        });
    }
    let result = rd::rd_kafka_event_DescribeTopics_result(event);
    if result.is_null() {
        return Err("DescribeTopics gave no result".into());
    }
    let mut n = 0usize;
    let descs = rd::rd_kafka_DescribeTopics_result_topics(result, &mut n);
    let mut ids = HashMap::new();
    for i in 0..n {
        let d = *descs.add(i);
        if d.is_null() {
            continue;
        }
        // Null or NO_ERROR both mean the topic is described (librdkafka gives either).
        let err = rd::rd_kafka_TopicDescription_error(d);
        if !err.is_null()
            && rd::rd_kafka_error_code(err) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            continue;
        }
        let uuid = rd::rd_kafka_TopicDescription_topic_id(d);
        if uuid.is_null()
            || (rd::rd_kafka_Uuid_most_significant_bits(uuid) == 0
                && rd::rd_kafka_Uuid_least_significant_bits(uuid) == 0)
        {
            continue;
        }
        let (name, id) = (
            rd::rd_kafka_TopicDescription_name(d),
            rd::rd_kafka_Uuid_base64str(uuid),
        );
        if name.is_null() || id.is_null() {
            continue;
        }
        ids.insert(
            CStr::from_ptr(name).to_string_lossy().into_owned(),
            CStr::from_ptr(id).to_string_lossy().into_owned(),
        );
    }
    Ok(ids)
}

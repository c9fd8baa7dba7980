//! Ids for messages that have no identity of their own (core NATS, MQTT, Redis Pub/Sub): each
//! one read is an event of its own, so each gets a name no other event has.

/// A reader's source of such names: a random prefix drawn once, then a count. A random id
/// per message cost a call into the system's random source each, on the path every message
/// of a tap takes.
pub(crate) struct FreshIds {
    prefix: u64,
    count: u64,
}

impl FreshIds {
    pub(crate) fn new() -> Self {
        FreshIds {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            count: 0,
        }
    }

    /// 32 hex digits, like the simple form of the UUIDs these replace.
    pub(crate) fn next(&mut self) -> String {
        self.count += 1;
        format!("{:016x}{:016x}", self.prefix, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_repeat_within_or_across_readers() {
        let (mut a, mut b) = (FreshIds::new(), FreshIds::new());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(a.next()));
            assert!(seen.insert(b.next()));
        }
        assert!(seen.iter().all(|s| s.len() == 32));
    }
}

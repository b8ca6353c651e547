//! Fresh member ids: `<client_id>-<uuid-like>`, as Kafka makes them.
//!
//! The coordinator is a pure state machine, so the randomness comes from a
//! seeded generator (SplitMix64) instead of the operating system, with the
//! clock mixed in: a restarted broker with the same seed must not hand out
//! the ids of the previous run, which old clients may still hold.

#[derive(Debug, Clone)]
pub(super) struct MemberIds {
    state: u64,
}

impl MemberIds {
    pub(super) fn new(seed: u64) -> Self {
        MemberIds { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `prefix` followed by a random version-4 UUID in its usual text form.
    pub(super) fn next(&mut self, prefix: &str, now_ms: i64) -> String {
        let clock = (now_ms as u64).rotate_left(32);
        let high = ((self.next_u64() ^ clock) & !0xF000) | 0x4000; // version 4
        let low = ((self.next_u64() ^ clock) & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        format!(
            "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xFFFF,
            high & 0xFFFF,
            low >> 48,
            low & 0xFFFF_FFFF_FFFF,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_client_id_dash_uuid_and_differ() {
        let mut ids = MemberIds::new(7);
        let a = ids.next("rdkafka", 1);
        let b = ids.next("rdkafka", 1);
        assert_ne!(a, b);
        let uuid = a.strip_prefix("rdkafka-").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
        assert!(uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn different_seeds_or_clocks_give_different_ids() {
        assert_ne!(
            MemberIds::new(1).next("c", 5),
            MemberIds::new(2).next("c", 5)
        );
        assert_ne!(
            MemberIds::new(1).next("c", 5),
            MemberIds::new(1).next("c", 6)
        );
    }
}

//! Key ranges: the range end that makes a prefix read or watch. The KV
//! RPCs themselves are `Call` variants in call.rs. Pure Rust.

/// The range end that covers every key starting with `key`: the key with
/// trailing 0xFF bytes removed and its last byte incremented; `"\0"` (all
/// keys >= key) when the key is all 0xFF bytes. An empty key gets no end.
pub fn prefix_range_end(key: &[u8]) -> Vec<u8> {
    if key.is_empty() {
        return Vec::new();
    }
    let mut end = key.to_vec();
    while let Some(&last) = end.last() {
        if last == 0xFF {
            end.pop();
        } else {
            *end.last_mut().expect("non-empty") = last + 1;
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_range_end(b"abc"), b"abd");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"a\xfe\xff\xff"), b"a\xff");
        assert_eq!(prefix_range_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_range_end(b""), b"");
        assert_eq!(prefix_range_end(b"\0"), b"\x01");
    }

    proptest::proptest! {
        /// The range [key, end) holds exactly the keys that start with
        /// `key` (end "\0" meaning "no upper bound", as etcd reads it).
        #[test]
        fn prefix_range_is_exactly_the_prefix(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..6),
            probe in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4),
        ) {
            // Bias toward interesting probes: 0xFF-heavy keys and keys that
            // share the prefix.
            let key: Vec<u8> = key.iter().map(|b| if b % 3 == 0 { 0xFF } else { *b }).collect();
            let end = prefix_range_end(&key);
            for x in [probe.clone(), [key.clone(), tail.clone()].concat(), [key[..key.len() - 1].to_vec(), probe].concat()] {
                let in_range = x >= key && (end == b"\0" || x < end);
                proptest::prop_assert_eq!(in_range, x.starts_with(&key), "key {:?} end {:?} probe {:?}", key, end, x);
            }
        }
    }
}

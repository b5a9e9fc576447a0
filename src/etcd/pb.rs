//! The generated etcd v3 protobuf messages and gRPC clients (tonic/prost,
//! built from proto/ by build.rs), fenced into one module with the lint
//! allowances generated code needs. Plain data: safe to move between threads.
#![allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    non_camel_case_types,
    unused_qualifications
)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}
pub mod authpb {
    tonic::include_proto!("authpb");
}
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

#[cfg(test)]
mod tests {
    use super::etcdserverpb as rpc;
    use prost::Message;

    /// Wire bytes as newer servers send them, written field by field from
    /// etcd's rpc.proto (field numbers and types), decode into the fields
    /// that reach Perl.
    #[test]
    fn fields_of_newer_servers_decode() {
        // StatusResponse: isLearner = 10, storageVersion = 11,
        // dbSizeQuota = 12, downgradeInfo = 13 { enabled = 1, targetVersion = 2 }.
        let mut b = vec![0x50, 0x01]; // 10: true
        b.extend([0x5a, 5]); // 11: "3.6.0"
        b.extend(b"3.6.0");
        b.extend([0x60, 0x80, 0x80, 0x80, 0x80, 0x10]); // 12: 4 GiB (varint)
        b.extend([0x6a, 9, 0x08, 0x01, 0x12, 5]); // 13: { true, "3.5.0" }
        b.extend(b"3.5.0");
        let s = rpc::StatusResponse::decode(&b[..]).unwrap();
        assert!(s.is_learner);
        assert_eq!(s.storage_version, "3.6.0");
        assert_eq!(s.db_size_quota, 4 << 30);
        let d = s.downgrade_info.unwrap();
        assert!(d.enabled);
        assert_eq!(d.target_version, "3.5.0");

        // An etcd 3.4 status has none of them.
        let old = rpc::StatusResponse::decode(&[0x12, 6, b'3', b'.', b'4', b'.', b'2', b'3'][..])
            .unwrap();
        assert_eq!(old.version, "3.4.23");
        assert!(old.storage_version.is_empty() && old.db_size_quota == 0);
        assert!(old.downgrade_info.is_none());

        // HashKVResponse: hash = 2, compact_revision = 3, hash_revision = 4.
        let h = rpc::HashKvResponse::decode(&[0x10, 0x07, 0x18, 0x02, 0x20, 0x09][..]).unwrap();
        assert_eq!((h.hash, h.compact_revision, h.hash_revision), (7, 2, 9));

        // Member: isLearner = 5.
        let m = rpc::Member::decode(&[0x08, 0x2a, 0x28, 0x01][..]).unwrap();
        assert_eq!((m.id, m.is_learner), (42, true));
    }
}

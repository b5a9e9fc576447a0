//! The one error type of the engine, and how gRPC statuses map onto it.
//! Pure Rust; the Perl error hash is built from it in src/perl/convert.rs.

use tonic::{Code, Status};

/// A failed call as the Perl callback sees it (minus the `source` label,
/// which the main thread knows from the method that issued the call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// gRPC status code.
    pub code: Code,
    /// Server status text, or a client-generated message.
    pub message: String,
    /// Produced by client-side processing: reported with source `internal`.
    pub internal: bool,
    /// A watch ended because its revision was compacted: the compaction
    /// revision, handed to the caller so it can re-list from there.
    pub compact_revision: Option<i64>,
}

pub const CANCELLED: Code = Code::Cancelled;
pub const DEADLINE_EXCEEDED: Code = Code::DeadlineExceeded;
pub const NOT_FOUND: Code = Code::NotFound;
pub const RESOURCE_EXHAUSTED: Code = Code::ResourceExhausted;
pub const UNAVAILABLE: Code = Code::Unavailable;
pub const INTERNAL: Code = Code::Internal;
pub const UNIMPLEMENTED: Code = Code::Unimplemented;
pub const DATA_LOSS: Code = Code::DataLoss;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            internal: false,
            compact_revision: None,
        }
    }

    /// A client-side processing failure (source `internal`).
    pub fn internal(message: impl Into<String>) -> Error {
        Error {
            code: INTERNAL,
            message: message.into(),
            internal: true,
            compact_revision: None,
        }
    }

    /// The call's `timeout` ran out.
    pub fn deadline() -> Error {
        Error::new(DEADLINE_EXCEEDED, "Deadline Exceeded")
    }

    /// The caller cancelled the request (a handle's `cancel`).
    pub fn cancelled() -> Error {
        Error::new(CANCELLED, "request cancelled")
    }

    pub fn from_status(s: &Status) -> Error {
        let mut message = s.message().to_owned();
        let mut code = s.code();
        if s.code() == Code::OutOfRange && message.starts_with(TOO_LARGE) {
            // tonic reports a response over max_recv_size as OUT_OF_RANGE;
            // gRPC itself (and etcd's Go client) say RESOURCE_EXHAUSTED, and
            // to etcd programs OUT_OF_RANGE means "revision compacted".
            code = RESOURCE_EXHAUSTED;
        }
        if s.code() == Code::Unknown && message == TOO_MANY_REQUESTS {
            // etcd sends its overload refusal as UNKNOWN (BEFORE_RAFT);
            // its code is RESOURCE_EXHAUSTED, as etcd's own client says.
            code = RESOURCE_EXHAUSTED;
        }
        if transport_code(s) {
            // Transport failures carry their cause in the source chain only.
            if let Some(cause) = transport_cause(s) {
                if message.is_empty() || !message.contains(&cause) {
                    message = if message.is_empty() {
                        cause
                    } else {
                        format!("{message}: {cause}")
                    };
                }
                // A lost connection (reset, broken pipe, TLS alert) is the
                // transient transport failure gRPC calls UNAVAILABLE.
                code = UNAVAILABLE;
                message = tls_hint(message);
            }
        }
        Error::new(code, message)
    }

    /// Symbolic name of the code, as in the Perl error hash's `status`.
    pub fn status_name(&self) -> &'static str {
        status_name(self.code)
    }

    /// Informational flag of the error hash: 1 for DEADLINE_EXCEEDED,
    /// RESOURCE_EXHAUSTED, ABORTED, INTERNAL and UNAVAILABLE.
    pub fn retryable(&self) -> bool {
        matches!(
            self.code,
            Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Internal
                | Code::Unavailable
        )
    }
}

/// What an error from the server says about the client's credentials.
/// etcd words these differently by version and path: etcd 3.4 sends its
/// `rpctypes` texts ("etcdserver: ..."), 3.5 lets some of its auth store's
/// own errors through unmapped ("auth: ...", status UNKNOWN; e.g. a stale
/// token is "auth: revision in header is old"), and a watch creation that
/// fails reports the gRPC error as text in its cancel reason ("rpc error:
/// code = ... desc = etcdserver: ..."). Every wording is recognised here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// The token is unknown to the server: expired, issued before a
    /// restart (simple tokens), or malformed.
    InvalidToken,
    /// The token was issued before the last change of the auth store.
    OldRevision,
    /// The request carried no token and the server has auth enabled.
    UserEmpty,
    /// The user may not do this. etcd 3.5 also says this when a watch is
    /// created with a token it does not accept.
    PermissionDenied,
    /// Wrong user name or password.
    AuthFailed,
    /// Authentication is not enabled on the server.
    NotEnabled,
}

impl AuthKind {
    /// The token itself is void: renewing it can help.
    pub fn token_void(self) -> bool {
        matches!(
            self,
            AuthKind::InvalidToken | AuthKind::OldRevision | AuthKind::UserEmpty
        )
    }
}

/// The texts of each kind, as etcd 3.4, 3.5 and 3.6 send them (their
/// `api/v3rpc/rpctypes/error.go` and `server/auth/store.go`).
const AUTH_TEXTS: &[(&str, AuthKind)] = &[
    ("invalid auth token", AuthKind::InvalidToken),
    ("revision of auth store is old", AuthKind::OldRevision),
    ("auth store revision is old", AuthKind::OldRevision),
    ("revision in header is old", AuthKind::OldRevision),
    ("user name is empty", AuthKind::UserEmpty),
    ("permission denied", AuthKind::PermissionDenied),
    ("authentication failed", AuthKind::AuthFailed),
    ("authentication is not enabled", AuthKind::NotEnabled),
];

/// The kind of an auth error the server sent, from its text; None for any
/// other error, and for errors the client made itself.
pub fn auth_kind(e: &Error) -> Option<AuthKind> {
    if e.internal {
        return None;
    }
    auth_kind_of(&e.message)
}

/// `auth_kind` of a bare text, e.g. a watch's cancel reason.
pub fn auth_kind_of(text: &str) -> Option<AuthKind> {
    AUTH_TEXTS
        .iter()
        .find(|(t, _)| text.contains(t))
        .map(|&(_, k)| k)
}

/// How tonic's decoder words a response larger than the receive limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// gRPC's name of each code.
pub fn status_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Names TLS failures plainly: rustls' texts ("invalid peer certificate:
/// UnknownIssuer") are kept, preceded by what they mean for the user.
fn tls_hint(message: String) -> String {
    if message.contains("invalid peer certificate") {
        format!("TLS certificate verification failed: {message}")
    } else if message.contains("received fatal alert") {
        format!("TLS handshake failed: {message}")
    } else {
        message
    }
}

/// Codes tonic gives transport failures: UNAVAILABLE (connect), UNKNOWN
/// (connection lost), CANCELLED (connection closed before sending).
fn transport_code(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled
    )
}

/// True when the failure came from the transport (connection refused,
/// reset, TLS, keepalive timeout) rather than from an answer of the server.
pub fn is_transport(s: &Status) -> bool {
    std::error::Error::source(s).is_some()
}

fn transport_cause(s: &Status) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    let mut last = None;
    while let Some(e) = src {
        last = Some(e.to_string());
        src = e.source();
    }
    last
}

/// etcd's refusal by a member without a leader (`rpctypes.ErrGRPCNoLeader`).
pub const NO_LEADER: &str = "etcdserver: no leader";

/// etcd's overload refusal (`etcdserver.ErrTooManyRequests`).
pub const TOO_MANY_REQUESTS: &str = "etcdserver: too many requests";

/// etcd's refusal of a proposal larger than the member's own
/// `--max-request-bytes` (`etcdserver.ErrRequestTooLarge`).
pub const REQUEST_TOO_LARGE: &str = "etcdserver: request is too large";

/// What etcd answers before a request entered raft, so that even a write
/// was not applied and may go to another member (POD "OVERLOAD" and
/// "PARTITIONS AND LEADER LOSS"), as etcd 3.4, 3.5 and 3.6 send them
/// (3.4: `etcdserver/`, 3.5 and later: `server/etcdserver/`):
/// - "etcdserver: no leader" (UNAVAILABLE): the require-leader check of
///   the unary interceptor (`api/v3rpc/interceptor.go`,
///   `newUnaryInterceptor`), before the handler runs; elsewhere only from
///   lease calls that wait for a leader (`waitLeader`), never after a
///   proposal;
/// - "etcdserver: too many requests": the check at the top of
///   `processInternalRaftRequestOnce` (`v3_server.go`) that the committed
///   index is at most 5000 entries ahead of the applied one, before the
///   proposal. `api/v3rpc/util.go` (`togRPCError`) maps the error to
///   `rpctypes.ErrTooManyRequests`, an `EtcdError` that carries no gRPC
///   status, so gRPC sends it as UNKNOWN; RESOURCE_EXHAUSTED, the code of
///   `rpctypes.ErrGRPCRequestTooManyRequests`, is accepted too;
/// - "raft proposal dropped" (UNKNOWN): `processInternalRaftRequestOnce`'s
///   `Propose` failed because raft refused the entry (`raft/raft.go`,
///   `ErrProposalDropped`: a follower or candidate without a leader, a
///   leader transferring leadership or removed from the cluster), so it
///   was never appended to the log; `togRPCError` has no mapping for it;
/// - "etcdserver: request is too large" (INVALID_ARGUMENT): the size check
///   in `processInternalRaftRequestOnce`, against the receiving member's
///   own `--max-request-bytes`, before the proposal. Members may differ,
///   so it is tried once on each endpoint (`member_limit`).
///
/// "etcdserver: leader changed" is not among them: it comes from the
/// linearizable read path, and reads are retried anyway.
const BEFORE_RAFT: &[(Code, &str)] = &[
    (Code::Unavailable, NO_LEADER),
    (Code::Unknown, TOO_MANY_REQUESTS),
    (Code::ResourceExhausted, TOO_MANY_REQUESTS),
    (Code::Unknown, "raft proposal dropped"),
    (Code::InvalidArgument, REQUEST_TOO_LARGE),
];

/// True when etcd refused the request before it entered raft.
pub fn before_raft(s: &Status) -> bool {
    BEFORE_RAFT
        .iter()
        .any(|(code, text)| s.code() == *code && s.message() == *text)
}

/// True for a refusal before raft that depends on the member's own
/// settings, not on the moment: another member may take the request, the
/// same member never will.
pub fn member_limit(s: &Status) -> bool {
    s.code() == Code::InvalidArgument && s.message() == REQUEST_TOO_LARGE
}

/// True when the status proves the request never left the client: no
/// connection could be made, so even a write may safely go elsewhere.
pub fn never_sent(s: &Status) -> bool {
    if !transport_code(s) {
        return false;
    }
    // The connection closed before the request was written (hyper's
    // "canceled": the request was still queued for the connection).
    if s.code() == Code::Cancelled && is_transport(s) {
        return true;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(e) = src {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | AddrNotAvailable
                    | NotFound
                    | HostUnreachable
                    | NetworkUnreachable
            ) {
                return true;
            }
        }
        let text = e.to_string();
        if text.contains("tcp connect error")
            || text.contains("error trying to connect")
            || text.contains("dns error")
        {
            return true;
        }
        src = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_retryable_flags() {
        let cases = [
            (0, "OK", false),
            (4, "DEADLINE_EXCEEDED", true),
            (8, "RESOURCE_EXHAUSTED", true),
            (10, "ABORTED", true),
            (11, "OUT_OF_RANGE", false),
            (13, "INTERNAL", true),
            (14, "UNAVAILABLE", true),
            (16, "UNAUTHENTICATED", false),
            // tonic reads a code past 16 as UNKNOWN
            (17, "UNKNOWN", false),
        ];
        for (code, name, retry) in cases {
            let e = Error::new(Code::from(code), "x");
            assert_eq!(e.status_name(), name);
            assert_eq!(e.retryable(), retry, "code {code}");
        }
    }

    #[test]
    fn auth_errors_of_every_version_by_kind() {
        use AuthKind::*;
        let cases = [
            // etcd 3.4 and 3.6 (rpctypes), unary calls
            (16, "etcdserver: invalid auth token", Some(InvalidToken)),
            (
                3,
                "etcdserver: revision of auth store is old",
                Some(OldRevision),
            ),
            (3, "etcdserver: user name is empty", Some(UserEmpty)),
            (7, "etcdserver: permission denied", Some(PermissionDenied)),
            (
                3,
                "etcdserver: authentication failed, invalid user ID or password",
                Some(AuthFailed),
            ),
            (
                9,
                "etcdserver: authentication is not enabled",
                Some(NotEnabled),
            ),
            // etcd 3.5: auth store errors it does not map (status UNKNOWN)
            (2, "auth: revision in header is old", Some(OldRevision)),
            (2, "auth: invalid auth token", Some(InvalidToken)),
            (2, "auth: user name is empty", Some(UserEmpty)),
            // watch cancel reasons carry the gRPC error as text
            (
                1,
                "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
                Some(InvalidToken),
            ),
            (
                1,
                "rpc error: code = PermissionDenied desc = etcdserver: permission denied",
                Some(PermissionDenied),
            ),
            (5, "etcdserver: requested lease not found", None),
            (14, "etcdserver: no leader", None),
        ];
        for (code, msg, kind) in cases {
            assert_eq!(auth_kind(&Error::new(Code::from(code), msg)), kind, "{msg}");
        }
        assert_eq!(auth_kind(&Error::internal("invalid auth token")), None);
        assert!(InvalidToken.token_void() && OldRevision.token_void() && UserEmpty.token_void());
        assert!(!PermissionDenied.token_void() && !AuthFailed.token_void());
    }

    #[test]
    fn status_maps_code_and_message() {
        let e = Error::from_status(&Status::not_found("etcdserver: requested lease not found"));
        assert_eq!(
            e,
            Error::new(Code::from(5), "etcdserver: requested lease not found")
        );
        assert!(!e.internal);
        assert_eq!(Error::deadline().message, "Deadline Exceeded");
        assert!(Error::internal("x").internal);
    }

    #[test]
    fn oversized_response_is_resource_exhausted() {
        let msg = "Error, decoded message length too large: found 20971772 bytes, the limit is: 1000000 bytes";
        let e = Error::from_status(&Status::out_of_range(msg));
        assert_eq!((e.code, e.message.as_str()), (RESOURCE_EXHAUSTED, msg));
        let compacted = "etcdserver: mvcc: required revision has been compacted";
        assert_eq!(
            Error::from_status(&Status::out_of_range(compacted)).code,
            Code::OutOfRange
        );
    }

    #[test]
    fn overload_is_resource_exhausted() {
        // etcd sends it as UNKNOWN; its code is RESOURCE_EXHAUSTED.
        let e = Error::from_status(&Status::unknown(TOO_MANY_REQUESTS));
        assert_eq!(
            (e.code, e.message.as_str()),
            (RESOURCE_EXHAUSTED, TOO_MANY_REQUESTS)
        );
        assert!(e.retryable());
        let e = Error::from_status(&Status::unknown("raft proposal dropped"));
        assert_eq!(e.code, Code::Unknown);
        let e = Error::from_status(&Status::invalid_argument(REQUEST_TOO_LARGE));
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::InvalidArgument, REQUEST_TOO_LARGE)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn refused_connection_is_never_sent() {
        use crate::etcd::pb::etcdserverpb::kv_client::KvClient;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ch = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect_lazy();
        let st = KvClient::new(ch)
            .range(crate::etcd::pb::etcdserverpb::RangeRequest::default())
            .await
            .unwrap_err();
        assert!(never_sent(&st), "{st:?}");
        let e = Error::from_status(&st);
        assert_eq!(e.code, UNAVAILABLE);
        assert!(e.message.contains("refused"), "{}", e.message);
        // A server-side UNAVAILABLE has no transport cause: it may have been applied.
        assert!(!never_sent(&Status::unavailable(
            "etcdserver: leader changed"
        )));
        assert!(!never_sent(&Status::internal("boom")));
    }

    #[test]
    fn refusals_before_raft() {
        for (code, text) in BEFORE_RAFT {
            assert!(before_raft(&Status::new(*code, *text)), "{text}");
        }
        // As etcd sends them.
        assert!(before_raft(&Status::unknown(
            "etcdserver: too many requests"
        )));
        let too_large = Status::invalid_argument("etcdserver: request is too large");
        assert!(before_raft(&too_large) && member_limit(&too_large));
        for (code, text) in BEFORE_RAFT.iter().filter(|(_, t)| *t != REQUEST_TOO_LARGE) {
            assert!(!member_limit(&Status::new(*code, *text)), "{text}");
        }
        // Same text, other code; and what may follow a proposal.
        assert!(!before_raft(&Status::unknown("etcdserver: no leader")));
        assert!(!before_raft(&Status::unknown(REQUEST_TOO_LARGE)));
        assert!(!member_limit(&Status::unknown(REQUEST_TOO_LARGE)));
        for text in [
            "etcdserver: request timed out",
            "etcdserver: leader changed",
            "etcdserver: request timed out, possibly due to previous leader failure",
        ] {
            assert!(!before_raft(&Status::unavailable(text)), "{text}");
        }
    }
}

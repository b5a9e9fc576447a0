//! A pure async etcd client for one EV::Etcd object: endpoints, settings,
//! and the unary call path with deadline, retry by RPC class and endpoint
//! failover. Runs on the runtime thread; knows nothing of Perl.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::auth::{Auth, Credentials};
use super::backlog::Backlog;
use super::call::{Call, CallOpts, Reply};
use super::endpoints::{Conn, EndpointStates, Endpoints};
use super::error::{self, Error};
use super::events::{describe, Counters, Event, Observer};
use super::leader::{self, LeaderWatch};
use super::namespace::Namespace;
use super::retry::{verdict, Backoff, Limits, Verdict};
use super::tls::Tls;

tokio::task_local! {
    /// The endpoint of a per-member call (`Client::unary_on`), for the
    /// attempts of that call alone.
    static PINNED: Option<String>;
}

/// `at` before the first attempt has chosen an endpoint.
pub const NO_ENDPOINT: usize = usize::MAX;

/// A retry after a backoff is started only when at least this much of the
/// call's time is left after it.
const LAST_TRY_MARGIN: std::time::Duration = std::time::Duration::from_millis(100);

/// Settings decoded from the constructor options.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoints: Vec<String>,
    pub timeout: Duration,
    pub max_retries: u32,
    pub auth_token: Option<String>,
    /// `user` and `password`: log in before the first request and again
    /// when the token goes stale (ignored when `auth_token` is given).
    pub credentials: Option<Credentials>,
    /// 0: no receive limit.
    pub max_recv_size: usize,
    /// Key prefix of every request and reply (src/etcd/namespace.rs).
    pub namespace: Vec<u8>,
    /// Set when the endpoints speak TLS (POD "TLS").
    pub tls: Option<Tls>,
    /// Current endpoint and transport states, shared with the Perl
    /// thread's health monitor.
    pub state: Arc<EndpointStates>,
    /// Streams and leader-bound calls carry etcd's require-leader
    /// metadata (`call::Service`).
    pub require_leader: bool,
    /// HTTP/2 keepalive pings of the connections.
    pub liveness: Liveness,
    /// How often a client with open streams asks its member whether it
    /// has a leader (src/etcd/leader.rs); zero: never.
    pub leader_check_interval: Duration,
    /// How often the member list replaces the endpoint list; zero: never.
    pub auto_sync_interval: Duration,
    /// Floor and cap of the backoff between retries and reconnects.
    pub backoff: Limits,
    /// Completions waiting for the Perl thread beyond which watch streams
    /// stop reading until the queue drains (POD "BACKPRESSURE").
    pub max_pending: usize,
    /// The same in bytes of keys and values of waiting watch responses.
    pub max_pending_bytes: usize,
    /// The completion queue those are counted in (set by the Perl thread).
    pub backlog: Option<Arc<Backlog>>,
}

/// HTTP/2 keepalive of the connections to the members (POD "new",
/// `keepalive_time`): a ping after `time` without traffic, the connection
/// closed when no answer comes within `timeout`; without `while_idle` only
/// while a call or stream is open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Liveness {
    pub time: Duration,
    pub timeout: Duration,
    pub while_idle: bool,
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            time: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            while_idle: false,
        }
    }
}

#[cfg(test)]
impl Config {
    /// Settings of a test client of `endpoints` closed loopback ports, 1 s
    /// timeout, 3 retries, nothing else set.
    pub fn for_test(endpoints: usize) -> Config {
        let names: Vec<String> = (0..endpoints)
            .map(|i| format!("127.0.0.1:{}", i + 1))
            .collect();
        Config {
            state: EndpointStates::new(names.clone()),
            endpoints: names,
            timeout: Duration::from_secs(1),
            max_retries: 3,
            auth_token: None,
            credentials: None,
            max_recv_size: 0,
            namespace: Vec::new(),
            tls: None,
            require_leader: true,
            liveness: Liveness::default(),
            leader_check_interval: Duration::ZERO,
            auto_sync_interval: Duration::ZERO,
            backoff: Limits::default(),
            max_pending: 1000,
            max_pending_bytes: 8 << 20,
            backlog: None,
        }
    }
}

pub struct Client {
    pub cfg: Config,
    pub endpoints: Endpoints,
    pub(crate) auth: Auth,
    pub ns: Namespace,
    pub leader: LeaderWatch,
}

impl Client {
    pub fn new(cfg: Config) -> Client {
        let endpoints = Endpoints::new(
            cfg.timeout.min(Duration::from_secs(5)),
            cfg.liveness,
            cfg.tls.clone(),
            cfg.state.clone(),
        );
        let auth = Auth::new(cfg.auth_token.as_deref(), cfg.credentials.clone());
        Client {
            leader: LeaderWatch::default(),
            ns: Namespace::new(cfg.namespace.clone()),
            cfg,
            endpoints,
            auth,
        }
    }

    /// Sends `call` with the client's token until `deadline`. The token
    /// rules (login, renewal, the user's own `authenticate`, the
    /// `auth_status` fallback) live in src/etcd/auth.rs.
    /// Keys go in and come out through the client's namespace.
    pub async fn unary(&self, call: Call, deadline: Instant) -> Result<Reply, Error> {
        let mut reply = match self.ns.apply(call) {
            Call::Authenticate(r) => self.user_authenticate(r, deadline).await,
            Call::AuthStatus(r) => self.auth_status(Call::AuthStatus(r), deadline).await,
            call => self.send_with_token(call, deadline).await,
        }?;
        self.ns.strip(&mut reply);
        Ok(reply)
    }

    /// `unary` asking endpoint `ep` alone (retries stay on it, no
    /// failover): per-member maintenance calls. `ep` is one of the
    /// client's endpoints, with or without its scheme.
    pub async fn unary_on(
        &self,
        ep: String,
        call: Call,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        PINNED.scope(Some(ep), self.unary(call, deadline)).await
    }

    /// Runs `work` with its requests and streams pinned to endpoint
    /// `member` when it is given (a per-member snapshot), as `unary_on`
    /// does for one call.
    pub async fn on_member<F: std::future::Future>(member: Option<String>, work: F) -> F::Output {
        match member {
            Some(ep) => PINNED.scope(Some(ep), work).await,
            None => work.await,
        }
    }

    /// The endpoint a pinned call (`unary_on`, `on_member`) must use, if
    /// any.
    pub fn pinned(&self) -> Result<Option<usize>, Error> {
        let Ok(Some(ep)) = PINNED.try_with(|p| p.clone()) else {
            return Ok(None);
        };
        let bare = |s: &str| {
            s.trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .to_owned()
        };
        let want = bare(&ep);
        let names = self.endpoints.state().names();
        match names.iter().position(|n| bare(n) == want) {
            Some(i) => Ok(Some(i)),
            None => Err(Error::new(
                error::NOT_FOUND,
                format!("endpoint {ep} is not one of the client's endpoints"),
            )),
        }
    }

    /// `send` inside `with_token`: the plain unary path.
    pub async fn send_with_token(&self, call: Call, deadline: Instant) -> Result<Reply, Error> {
        if self.auth.tokenless() {
            // The common case: no token rules apply, no copy of the call.
            return self.send(call, &self.current_opts().0, deadline).await;
        }
        self.with_token(deadline, |opts| {
            let call = call.clone();
            async move { self.send(call, &opts, deadline).await }
        })
        .await
    }

    /// Sends `call` with `opts`, retrying per its class, until `deadline`.
    pub async fn send(
        &self,
        call: Call,
        opts: &CallOpts,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        let at = AtomicUsize::new(NO_ENDPOINT);
        let may_block = call.may_block();
        match tokio::time::timeout_at(deadline, self.attempts(call, opts, deadline, &at)).await {
            Ok(reply) => reply,
            Err(_) => {
                if !may_block {
                    self.unanswered(at.load(Ordering::Relaxed));
                }
                Err(Error::deadline())
            }
        }
    }

    /// Whether a call may run in a group (`unary_grouped`): one whose
    /// token, login and cancellation rules need no state of their own.
    pub fn groupable(&self, call: &Call) -> bool {
        self.auth.tokenless()
            && !call.may_block()
            && !matches!(call, Call::Authenticate(_) | Call::AuthStatus(_))
    }

    /// `unary` for a call that `groupable` accepted (so `opts` carries no
    /// token: `current_opts`), without a deadline of its own: the caller
    /// (runtime.rs, one timer for many calls) drops it at `deadline` and
    /// then reports `unanswered(at)`. `at` holds the endpoint of the
    /// attempt in progress.
    pub async fn unary_grouped(
        &self,
        call: Call,
        opts: &CallOpts,
        deadline: Instant,
        at: &AtomicUsize,
    ) -> Result<Reply, Error> {
        let call = self.ns.apply(call);
        let mut reply = self.attempts(call, opts, deadline, at).await?;
        self.ns.strip(&mut reply);
        Ok(reply)
    }

    /// A call got no answer in the whole time from endpoint `idx`: the
    /// member may be stopped or cut off with its connection still open
    /// (which only the keepalive would notice, after many seconds). Later
    /// requests go to the next endpoint.
    pub fn unanswered(&self, idx: usize) {
        if idx < self.endpoints.len() {
            self.endpoints.state().set_conn(idx, Conn::Down);
            self.endpoints
                .failover(idx, || "no answer within the timeout".into());
        }
    }

    /// After `status` from endpoint `idx`: a request that never reached it,
    /// one the member refused before it entered raft (no leader, overload,
    /// a request over its size limit),
    /// an unavailable member, or a connection that died under the request
    /// (reset, keepalive timeout: tonic may report these as UNKNOWN) sends
    /// what follows to the next endpoint. True when the request was
    /// certainly not applied (a retry cannot apply it twice).
    pub fn fail_over_if_unreachable(&self, idx: usize, status: &tonic::Status) -> bool {
        let not_applied = error::never_sent(status) || error::before_raft(status);
        let lost = status.code() == error::UNAVAILABLE || error::is_transport(status);
        if not_applied || lost {
            self.endpoints.failover(idx, || describe(status));
        }
        not_applied
    }

    /// The attempts of `send`, with no deadline of their own (`deadline`
    /// only bounds the backoff). Each attempt's endpoint is stored in `at`.
    async fn attempts(
        &self,
        call: Call,
        opts: &CallOpts,
        deadline: Instant,
        at: &AtomicUsize,
    ) -> Result<Reply, Error> {
        let class = call.class();
        let mut backoff = Backoff::within(self.cfg.backoff);
        let mut attempt: u32 = 0;
        // Refusals of the request by a member's own size limit.
        let mut too_large: usize = 0;
        let pinned = self.pinned()?;
        // A pinned call has one endpoint to try, however many the client has.
        let tries = if pinned.is_some() {
            1
        } else {
            self.endpoints.len()
        };
        loop {
            attempt += 1;
            let idx = pinned.unwrap_or_else(|| self.endpoints.current());
            at.store(idx, Ordering::Relaxed);
            let ch = self
                .endpoints
                .channel(idx)
                .map_err(|m| Error::new(error::UNAVAILABLE, m))?;
            // Boxed: the caller's future stays small (no large copies).
            let status = match Box::pin(call.clone().exec(ch, opts)).await {
                Ok(reply) => {
                    self.endpoints.state().set_conn(idx, Conn::Up);
                    return reply.checked();
                }
                Err(status) => status,
            };
            self.record(idx, &status);
            let not_applied = match pinned {
                None => self.fail_over_if_unreachable(idx, &status),
                Some(_) => error::never_sent(&status) || error::before_raft(&status),
            };
            let code = status.code();
            // A refusal by the member's own limit is tried on the next
            // endpoint, whose limit may be higher, but final once as many
            // refusals as the client has endpoints came back.
            if error::member_limit(&status) {
                too_large += 1;
                if too_large >= tries {
                    return Err(self.error(&status));
                }
            }
            // A refusal before raft (no leader, overload) is tried again,
            // on the next endpoint, until the deadline: an election takes
            // longer than a few quick retries.
            if !error::before_raft(&status)
                && verdict(
                    class,
                    code,
                    not_applied,
                    attempt,
                    self.cfg.max_retries,
                    tries,
                ) == Verdict::Fail
            {
                return Err(self.error(&status));
            }
            // Each other endpoint is tried at once; a full round backs off.
            let delay = if (attempt as usize).is_multiple_of(tries.max(1)) {
                backoff.next_delay()
            } else {
                Duration::ZERO
            };
            // A retry that would start too close to the deadline could
            // only end in DEADLINE_EXCEEDED (on a busy machine even a
            // refused connection takes a while): the last error is the
            // better answer.
            let wake = Instant::now() + delay;
            if !delay.is_zero() && wake + LAST_TRY_MARGIN >= deadline {
                return Err(self.error(&status));
            }
            Counters::add(&self.events().counters.retries, 1);
            self.events().emit(|| Event::Retry {
                method: call.label(),
                attempt: attempt + 1,
                delay,
                error: self.error(&status),
            });
            if !delay.is_zero() {
                tokio::time::sleep_until(wake).await;
            }
        }
    }

    /// The error reported for `status`, with a hint when a TLS client
    /// without a certificate sees its connection refused by the server.
    fn error(&self, status: &tonic::Status) -> Error {
        let mut e = Error::from_status(status);
        let anonymous = self.cfg.tls.as_ref().is_some_and(|t| t.identity.is_none());
        if anonymous
            && error::is_transport(status)
            && [
                "fatal alert",
                "broken pipe",
                "reset by peer",
                "connection closed",
            ]
            .iter()
            .any(|w| e.message.contains(w))
        {
            e.message.push_str(
                " (if the server requires client certificates, set tls cert_file and key_file)",
            );
        }
        e
    }

    /// Notes what a failed call says about endpoint `idx`'s transport: a
    /// transport failure marks it down; an answer from the server, even an
    /// error, marks it up.
    fn record(&self, idx: usize, status: &tonic::Status) {
        // A member without a leader is down for a client that needs one.
        let leaderless = status.code() == error::UNAVAILABLE
            && status.message() == error::NO_LEADER
            && self.cfg.require_leader;
        let conn = if error::is_transport(status) || leaderless {
            Conn::Down
        } else {
            Conn::Up
        };
        self.endpoints.state().set_conn(idx, conn);
    }

    /// The health monitor's probe of an endpoint known to be down: one
    /// cheap call (Maintenance/Status) whose outcome is recorded.
    pub async fn probe(&self, idx: usize, limit: Duration) {
        let Ok(ch) = self.endpoints.channel(idx) else {
            return;
        };
        let call = Call::Status(Default::default());
        match tokio::time::timeout(limit, call.exec(ch, &self.current_opts().0)).await {
            Ok(Ok(r)) if self.cfg.require_leader && leader::has_no_leader(&r) => {
                self.endpoints.state().set_conn(idx, Conn::Down)
            }
            Ok(Ok(_)) => self.endpoints.state().set_conn(idx, Conn::Up),
            Ok(Err(status)) => self.record(idx, &status),
            Err(_) => {}
        }
    }

    pub fn close(&self) {
        self.endpoints.close();
    }

    /// The client's events and counters.
    pub fn events(&self) -> &Observer {
        self.endpoints.state().events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::pb::etcdserverpb as rpc;
    use tonic::codegen::Bytes;
    use tonic::Code;

    /// What a fake member answers to a call.
    #[derive(Clone, Copy)]
    enum Answer {
        Ok,
        Refuse(Code, &'static str),
    }

    const TOO_LARGE: Answer = Answer::Refuse(Code::InvalidArgument, error::REQUEST_TOO_LARGE);
    /// etcd's overload refusal, as it is sent.
    const OVERLOADED: Answer = Answer::Refuse(Code::Unknown, error::TOO_MANY_REQUESTS);

    /// A gRPC server on a loopback port answering its calls with `answers`
    /// in turn (the last one again once they run out): an empty message, or
    /// a status. Returns its address and how many calls it got.
    async fn member(answers: Vec<Answer>) -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                let (seen, answers) = (seen.clone(), answers.clone());
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(sock).await else {
                        return;
                    };
                    while let Some(Ok((_req, mut tx))) = conn.accept().await {
                        let n = seen.fetch_add(1, Ordering::SeqCst);
                        let answer = answers[n.min(answers.len() - 1)];
                        let head = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc");
                        match answer {
                            Answer::Refuse(code, text) => {
                                let head = head
                                    .header("grpc-status", (code as i32).to_string())
                                    .header("grpc-message", text);
                                let _ = tx.send_response(head.body(()).unwrap(), true);
                            }
                            Answer::Ok => {
                                let Ok(mut body) = tx.send_response(head.body(()).unwrap(), false)
                                else {
                                    continue;
                                };
                                let _ = body.send_data(Bytes::from_static(&[0; 5]), false);
                                let mut trailers = http::HeaderMap::new();
                                trailers.insert("grpc-status", "0".parse().unwrap());
                                let _ = body.send_trailers(trailers);
                            }
                        }
                    }
                });
            }
        });
        (addr, calls)
    }

    /// A client of fake members answering with `scripts`, one each, whose
    /// backoff rounds take at least `floor`; returns it and their counters.
    async fn client(
        scripts: Vec<Vec<Answer>>,
        max_retries: u32,
        floor: Duration,
    ) -> (Client, Vec<Arc<AtomicUsize>>) {
        let mut names = Vec::new();
        let mut calls = Vec::new();
        for answers in scripts {
            let (addr, n) = member(answers).await;
            names.push(addr);
            calls.push(n);
        }
        let c = Client::new(Config {
            state: EndpointStates::new(names.clone()),
            endpoints: names,
            max_retries,
            backoff: Limits { floor, cap: floor },
            ..Config::for_test(1)
        });
        (c, calls)
    }

    /// A put through `c` within `secs`: its outcome and how long it took.
    async fn put(c: &Client, secs: u64) -> (Result<Reply, Error>, Duration) {
        let start = Instant::now();
        let call = Call::Put(rpc::PutRequest {
            key: b"k".to_vec(),
            value: vec![b'v'; 64 * 1024],
            ..Default::default()
        });
        let r = c
            .send_with_token(call, start + Duration::from_secs(secs))
            .await;
        (r, start.elapsed())
    }

    fn counts(calls: &[Arc<AtomicUsize>]) -> Vec<usize> {
        calls.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }

    const SLOW: Duration = Duration::from_secs(5);

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_too_large_for_one_member_goes_to_the_next() {
        let (c, calls) = client(
            vec![vec![TOO_LARGE], vec![Answer::Ok], vec![Answer::Ok]],
            3,
            SLOW,
        )
        .await;
        let (r, took) = put(&c, 20).await;
        assert!(matches!(r, Ok(Reply::Put(_))), "{r:?}");
        assert_eq!(counts(&calls), [1, 1, 0]);
        assert!(took < Duration::from_secs(2), "no backoff: {took:?}");
        assert_eq!(c.endpoints.current(), 1, "later calls start there");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn too_large_everywhere_is_reported_after_one_round() {
        let (c, calls) = client(vec![vec![TOO_LARGE]; 3], 3, SLOW).await;
        let (r, took) = put(&c, 20).await;
        let e = r.unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::InvalidArgument, error::REQUEST_TOO_LARGE)
        );
        assert!(!e.internal);
        assert_eq!(counts(&calls), [1, 1, 1], "each member asked once");
        assert!(took < Duration::from_secs(2), "no backoff: {took:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn too_large_on_the_only_endpoint_is_reported_at_once() {
        let (c, calls) = client(vec![vec![TOO_LARGE, Answer::Ok]], 3, SLOW).await;
        let (r, took) = put(&c, 20).await;
        assert_eq!(r.unwrap_err().code, Code::InvalidArgument);
        assert_eq!(counts(&calls), [1]);
        assert!(took < Duration::from_secs(2), "no backoff: {took:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_overloaded_member_gets_the_write_again_after_backoff() {
        // max_retries 0 does not stop it: the write never entered raft.
        let floor = Duration::from_millis(100);
        for refusal in [
            OVERLOADED,
            Answer::Refuse(Code::ResourceExhausted, error::TOO_MANY_REQUESTS),
        ] {
            let (c, calls) = client(vec![vec![refusal, refusal, Answer::Ok]], 0, floor).await;
            let (r, took) = put(&c, 20).await;
            assert!(matches!(r, Ok(Reply::Put(_))), "{r:?}");
            assert_eq!(counts(&calls), [3]);
            assert!(took >= floor * 2, "two backoffs: {took:?}");
        }
        // With two members the other one is asked at once.
        let (c, calls) = client(vec![vec![OVERLOADED], vec![Answer::Ok]], 0, SLOW).await;
        let (r, took) = put(&c, 20).await;
        assert!(matches!(r, Ok(Reply::Put(_))), "{r:?}");
        assert_eq!(counts(&calls), [1, 1]);
        assert!(took < Duration::from_secs(2), "no backoff: {took:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lasting_overload_is_reported_as_resource_exhausted() {
        let (c, calls) = client(vec![vec![OVERLOADED]], 3, Duration::from_millis(50)).await;
        let (r, took) = put(&c, 1).await;
        let e = r.unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::ResourceExhausted, error::TOO_MANY_REQUESTS)
        );
        assert!(e.retryable());
        assert!(
            counts(&calls)[0] >= 3,
            "tried until the deadline: {:?}",
            counts(&calls)
        );
        assert!(
            took < Duration::from_secs(1),
            "the last refusal, not a timeout: {took:?}"
        );
    }
}

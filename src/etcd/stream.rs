//! The long-lived streams (watch engine, lease keeper, observe) and what
//! they share: one supervisor (`supervise`) that runs every stream engine
//! through its sessions - open with the client's token on the current
//! endpoint, carry the engine's traffic, and after a loss the one reconnect
//! policy (`Reconnect`): failover, token renewal, errors no reconnection can
//! fix, one try per endpoint before a round counts as refused, and backoff
//! (floor 50 ms, doubling, cap 2 s, jitter). An engine says only what its
//! stream carries (`Engine`). One-shot streams (snapshot) open with `open`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use super::call::{CallOpts, Reply};
use super::client::Client;
use super::error::{self, AuthKind, Error};
use super::events::{Counters, Event};
use super::retry::Backoff;

/// Where an engine serving many requests sends results:
/// `(request id, result, last)`; `last` ends that request.
pub type Sink = Arc<dyn Fn(u64, Result<Reply, Error>, bool) + Send + Sync>;

/// Where a task serving one request sends results: `(result, last)`.
pub type ReqSink = Box<dyn Fn(Result<Reply, Error>, bool) + Send + Sync>;

/// A stream that ended.
pub struct Lost {
    pub endpoint: usize,
    pub status: Status,
    /// Whether the server ever answered on it.
    pub stream: bool,
    /// The generation of the token it was opened with.
    pub token: u64,
}

/// How a stream session ended.
pub enum Ended {
    /// The client is gone.
    Closed,
    /// Nothing is left to carry: the stream was closed on purpose.
    Idle,
    Lost(Lost),
}

/// The settings and channel a new stream is opened with.
pub struct Opening {
    pub endpoint: usize,
    /// The endpoint's name (its index may change with the list).
    pub name: String,
    pub opts: CallOpts,
    pub token: u64,
    pub ch: Channel,
}

impl Opening {
    /// The loss of the stream opened from here.
    pub fn lost(&self, status: Status, stream: bool) -> Ended {
        Ended::Lost(Lost {
            endpoint: self.endpoint,
            status,
            stream,
            token: self.token,
        })
    }
}

/// Logs in if needed and takes the current endpoint's channel (or the
/// pinned one's: `Client::on_member`); a failure is a loss before any
/// stream existed.
pub async fn open(client: &Client) -> Result<Opening, Lost> {
    let pinned = client.pinned();
    let endpoint = match &pinned {
        Ok(Some(i)) => *i,
        _ => client.endpoints.current(),
    };
    let deadline = Instant::now() + client.cfg.timeout;
    let lost = |status, token| Lost {
        endpoint,
        status,
        stream: false,
        token,
    };
    if let Err(e) = pinned {
        return Err(lost(Status::new(e.code, e.message), 0));
    }
    let (opts, token) = match client.call_opts(deadline).await {
        Ok(o) => o,
        Err(e) => return Err(lost(Status::new(e.code, e.message), 0)),
    };
    match client.endpoints.channel(endpoint) {
        Ok(ch) => Ok(Opening {
            endpoint,
            name: client.endpoints.name(endpoint),
            opts,
            token,
            ch,
        }),
        Err(m) => Err(lost(Status::unavailable(m), token)),
    }
}

/// The stream RPC on its way: resolves to the server's messages.
pub type Opened<M> =
    Pin<Box<dyn Future<Output = Result<tonic::Response<Streaming<M>>, Status>> + Send>>;

/// What a stream carries, for `supervise`: commands from the Perl thread,
/// requests on the stream, messages from the server, timers, and what ends
/// when the stream cannot be carried on. Runs on the runtime thread.
pub trait Engine: Send {
    /// What the Perl thread asks of it.
    type Cmd: Send;
    /// What the server sends on the stream.
    type Message: Send + 'static;
    /// Names the stream in the loss of a stream the server closed.
    const NAME: &'static str;

    fn client(&self) -> &Arc<Client>;
    /// Nothing to carry: no stream is kept open until a command comes.
    fn idle(&self) -> bool;
    /// Everything it served has ended: the engine stops.
    fn finished(&self) -> bool {
        false
    }
    fn command(&mut self, c: Self::Cmd);
    /// Starts the stream RPC on `o` and (re)sends what is waiting.
    fn open(&mut self, o: &Opening) -> Opened<Self::Message>;
    /// The server took the stream.
    fn accepted(&mut self) {}
    /// Whether the stream stops reading while the Perl thread falls
    /// behind (`Config::max_pending`).
    fn yields(&self) -> bool {
        false
    }
    /// The newest revision the stream delivered (in the resumed event).
    fn revision(&self) -> i64 {
        0
    }
    /// Whether the server answers the opening at once (it has requests to
    /// answer), so that a stream not taken within the client's `timeout`
    /// means a member that does not answer. An observation is answered
    /// only once the election has a leader.
    fn answered_at_once(&self) -> bool {
        true
    }
    /// A message from the server; `Some(status)` ends the stream as lost
    /// with that status (to be reopened, as after any loss).
    fn message(&mut self, m: Self::Message, s: &Session<'_>) -> Option<Status>;
    /// When `tick` is due next, with or without a stream.
    fn timer(&self) -> Option<Instant> {
        None
    }
    fn tick(&mut self) {}
    /// The stream is gone: forget what belonged to it. True when the server
    /// answered on it (the next loss starts the backoff afresh).
    fn closed(&mut self) -> bool;
    /// An error no reconnection fixes: end everything with it.
    fn fail_all(&mut self, e: Error);
    /// The stream was lost and is reopened after a backoff: end what is not
    /// to wait for that. `refused`: no endpoint took a stream in this round.
    fn give_up(&mut self, refused: bool);
}

/// The current stream, as its message handler sees it.
pub struct Session<'a> {
    rc: &'a Reconnect,
    /// The generation of the token the stream was opened with.
    pub token: u64,
}

impl Session<'_> {
    /// Whether a refusal `err` of something sent on this stream is answered
    /// by renewing the token and reopening (`Reconnect::renews`).
    pub fn renews(&self, client: &Client, err: &Error) -> bool {
        self.rc.renews(client, self.token, err)
    }
}

/// Runs `e` until its commands end (the client is gone) or it finishes:
/// a stream while it has something to carry, reopened after every loss as
/// `Reconnect` decides.
pub async fn supervise<E: Engine>(mut e: E, mut cmds: mpsc::UnboundedReceiver<E::Cmd>) {
    let mut rc = Reconnect::within(e.client().cfg.backoff);
    // A stream was lost: the next one taken is a resumption.
    let mut resuming = false;
    loop {
        while e.idle() && !e.finished() {
            match cmds.recv().await {
                Some(c) => e.command(c),
                None => return,
            }
        }
        if e.finished() {
            return;
        }
        let ended = session(&mut e, &mut cmds, &rc, &mut resuming).await;
        let lost = match ended {
            Ended::Closed => return,
            Ended::Idle => {
                e.closed();
                resuming = false;
                continue;
            }
            Ended::Lost(l) => l,
        };
        if lost.stream {
            resuming = true;
            let client = e.client();
            client.events().emit(|| Event::StreamLost {
                kind: E::NAME,
                endpoint: client.endpoints.name(lost.endpoint),
                error: Error::from_status(&lost.status),
            });
        }
        if e.closed() {
            rc.answered();
        }
        match rc.after(e.client(), &lost).await {
            Next::Renewed | Next::NextEndpoint => continue,
            Next::Fail(err) => {
                e.fail_all(err);
                continue;
            }
            Next::Refused => e.give_up(true),
            Next::Later => e.give_up(false),
        }
        // The backoff, serving commands and timers meanwhile.
        let wake = Instant::now() + rc.delay();
        loop {
            e.tick();
            if e.idle() || e.finished() {
                break;
            }
            let at = e.timer().map_or(wake, |t| t.min(wake));
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {
                    if Instant::now() >= wake {
                        break;
                    }
                }
                c = cmds.recv() => match c {
                    Some(c) => e.command(c),
                    None => return,
                },
            }
        }
    }
}

/// One stream of `e`, from opening to its end.
async fn session<E: Engine>(
    e: &mut E,
    cmds: &mut mpsc::UnboundedReceiver<E::Cmd>,
    rc: &Reconnect,
    resuming: &mut bool,
) -> Ended {
    let o = match open(e.client()).await {
        Ok(o) => o,
        Err(l) => return Ended::Lost(l),
    };
    let s = Session { rc, token: o.token };
    let mut call = e.open(&o);
    // A member that takes the connection but never answers (stopped, cut
    // off): given up after the client's timeout, like a unary call.
    let unanswered = e
        .answered_at_once()
        .then(|| Instant::now() + e.client().cfg.timeout);
    let mut inbound = loop {
        let at = e.timer();
        tokio::select! {
            r = &mut call => match r {
                Ok(resp) => break resp.into_inner(),
                Err(status) => return o.lost(status, false),
            },
            _ = sleep_until(unanswered) => {
                e.client().unanswered(o.endpoint);
                let msg = format!("{} stream not answered within the timeout", E::NAME);
                return o.lost(Status::deadline_exceeded(msg), false);
            }
            c = cmds.recv() => match c {
                Some(c) => e.command(c),
                None => return Ended::Closed,
            },
            _ = sleep_until(at) => e.tick(),
        }
    };
    e.accepted();
    let client = e.client().clone();
    if std::mem::take(resuming) {
        Counters::add(&client.events().counters.reconnects, 1);
        client.events().emit(|| Event::StreamResumed {
            kind: E::NAME,
            endpoint: o.name.clone(),
            revision: e.revision(),
        });
    }
    let _open = client.leader.stream_open(&o.name);
    let mut leader_lost = client.leader.subscribe();
    let mut watching = true;
    let mut pressure = Pressure::of(&client, e.yields());
    loop {
        if e.idle() {
            return Ended::Idle;
        }
        if e.finished() {
            return Ended::Closed;
        }
        let at = e.timer();
        let paused = pressure.paused();
        tokio::select! {
            _ = pressure.relieved(), if paused => {}
            r = leader_lost.changed(), if watching => {
                watching = r.is_ok();
                let leaderless = watching && leader_lost.borrow_and_update().1 == o.name;
                if leaderless {
                    // The client found this member without a leader
                    // (src/etcd/leader.rs): move before etcd ends the stream.
                    return o.lost(Status::unavailable(error::NO_LEADER), true);
                }
                if !client.endpoints.state().contains(&o.name) {
                    let status = Status::unavailable("endpoint removed from the client's list");
                    return o.lost(status, true);
                }
            }
            m = inbound.message(), if !paused => match m {
                Ok(Some(m)) => {
                    if let Some(status) = e.message(m, &s) {
                        return o.lost(status, true);
                    }
                }
                Ok(None) => {
                    let closed = format!("{} stream closed by the server", E::NAME);
                    return o.lost(Status::unavailable(closed), true);
                }
                Err(status) => return o.lost(status, true),
            },
            c = cmds.recv() => match c {
                Some(c) => e.command(c),
                None => return Ended::Closed,
            },
            _ = sleep_until(at) => e.tick(),
        }
    }
}

/// A stream's view of the Perl thread's backlog: past the client's
/// `max_pending` or `max_pending_bytes` it stops reading until the queue
/// is down to half of both.
struct Pressure {
    client: Arc<Client>,
    backlog: Option<Arc<super::backlog::Backlog>>,
    on: bool,
}

impl Pressure {
    /// For a stream that `yields`; others never pause.
    fn of(client: &Arc<Client>, yields: bool) -> Pressure {
        Pressure {
            client: client.clone(),
            backlog: client.cfg.backlog.clone().filter(|_| yields),
            on: false,
        }
    }

    /// Whether to stop reading now (an event when that changes).
    fn paused(&mut self) -> bool {
        let Some(b) = &self.backlog else {
            return false;
        };
        let cfg = &self.client.cfg;
        if !self.on && b.over(cfg.max_pending, cfg.max_pending_bytes) {
            self.on = true;
            self.client.events().emit(|| Event::Backpressure {
                on: true,
                pending: b.depth(),
                bytes: b.bytes(),
            });
        }
        self.on
    }

    /// Resolves once the queue is down to half of `max_pending`.
    async fn relieved(&mut self) {
        let Some(b) = &self.backlog else {
            return std::future::pending().await;
        };
        let cfg = &self.client.cfg;
        b.below(cfg.max_pending / 2, cfg.max_pending_bytes / 2)
            .await;
        self.on = false;
        self.client.events().emit(|| Event::Backpressure {
            on: false,
            pending: b.depth(),
            bytes: b.bytes(),
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The stream engines' next step after a loss.
pub enum Next {
    /// Reopen at once: the token was renewed (or dropped).
    Renewed,
    /// Reopen at once on the next endpoint of this round.
    NextEndpoint,
    /// Every endpoint refused in this round: what never had a stream fails
    /// with its setup error; the rest backs off.
    Refused,
    /// Back off, then reopen.
    Later,
    /// End everything with this error.
    Fail(Error),
}

/// Stream errors that no reconnection can fix, for every kind of stream: a
/// request the server rejects, credentials it refuses, a service it does
/// not offer.
const FATAL: &[Code] = &[
    Code::InvalidArgument,
    Code::PermissionDenied,
    Code::Unauthenticated,
    Code::Unimplemented,
    Code::FailedPrecondition,
];

#[derive(Default)]
pub struct Reconnect {
    backoff: Backoff,
    refused: usize,
    /// The token generation current when the last stream was lost: a token
    /// of this generation or older predates the loss (a member restart may
    /// have voided it).
    lost_gen: u64,
    /// The generation of the token this stream renewed after a refusal: a
    /// refusal of that token is final.
    renewed_gen: Option<u64>,
}

impl Reconnect {
    /// A policy whose backoff keeps within `l` (the client's limits).
    pub fn within(l: super::retry::Limits) -> Reconnect {
        Reconnect {
            backoff: Backoff::within(l),
            ..Reconnect::default()
        }
    }

    /// The server answered on the stream: the next loss starts afresh.
    pub fn answered(&mut self) {
        self.backoff.reset();
        self.refused = 0;
    }

    /// Whether a refusal `err` of something sent on a stream opened with
    /// token generation `gen` (a watch creation, the stream itself) is to
    /// be answered by renewing the token and reopening, rather than taken
    /// as final. Only a client with credentials renews, and only once: a
    /// refusal of the token it renewed for this stream is final. A token
    /// the server calls void is renewed; a "permission denied" (etcd 3.5's
    /// answer to a watch created with a void token, and a user's real
    /// lack of permission alike) is renewed only when the token predates
    /// the last loss of the stream or a later login.
    pub fn renews(&self, client: &Client, gen: u64, err: &Error) -> bool {
        if !client.can_renew() || self.renewed_gen == Some(gen) {
            return false;
        }
        match error::auth_kind(err) {
            Some(k) if k.token_void() => true,
            Some(AuthKind::PermissionDenied) => {
                gen <= self.lost_gen || gen < client.auth.current().1
            }
            _ => false,
        }
    }

    /// Decides what follows the loss `l`.
    pub async fn after(&mut self, client: &Client, l: &Lost) -> Next {
        let code = l.status.code();
        client.fail_over_if_unreachable(l.endpoint, &l.status);
        if !l.stream {
            // Never opened there: the next try goes to the next endpoint.
            client
                .endpoints
                .failover(l.endpoint, || super::events::describe(&l.status));
        }
        let err = Error::from_status(&l.status);
        let deadline = Instant::now() + client.cfg.timeout;
        let renew = self.renews(client, l.token, &err);
        // The token this stream renewed for a refusal is refused too: final.
        let fresh = self.renewed_gen.take() == Some(l.token)
            && error::auth_kind(&err)
                .is_some_and(|k| k.token_void() || k == AuthKind::PermissionDenied);
        self.lost_gen = client.auth.current().1;
        if fresh {
            return Next::Fail(err);
        }
        if renew {
            return match client.renew_token(l.token, deadline).await {
                Ok(()) => {
                    self.renewed_gen = Some(client.auth.current().1);
                    Next::Renewed
                }
                Err(e) if e.retryable() => Next::Later,
                Err(e) => Next::Fail(e),
            };
        }
        match client.recover_token(l.token, &err, deadline).await {
            Ok(true) => return Next::Renewed,
            Ok(false) => {}
            // The new login could not get through (a member down, the
            // cluster between leaders): try again after the backoff, as
            // for any lost stream. A login the server refuses ends it.
            Err(e) if e.retryable() => return Next::Later,
            Err(e) => return Next::Fail(e),
        }
        if FATAL.contains(&code) {
            return Next::Fail(err);
        }
        if !l.stream {
            self.refused += 1;
            if self.refused < client.endpoints.len() {
                return Next::NextEndpoint;
            }
            self.refused = 0;
            return Next::Refused;
        }
        Next::Later
    }

    /// The wait before the next attempt.
    pub fn delay(&mut self) -> Duration {
        self.backoff.next_delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::auth::Credentials;
    use crate::etcd::client::Config;

    fn client(endpoints: usize) -> Client {
        with_credentials(endpoints, None)
    }

    fn with_credentials(endpoints: usize, credentials: Option<Credentials>) -> Client {
        Client::new(Config {
            credentials,
            ..Config::for_test(endpoints)
        })
    }

    fn lost(code: Code, stream: bool) -> Lost {
        Lost {
            endpoint: 0,
            status: Status::new(code, "from the server"),
            stream,
            token: 0,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_follows_a_lost_stream() {
        let c = client(2);
        // No reconnection fixes these, for any kind of stream (a service the
        // server does not offer among them): the stream ends with the error.
        for code in [
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Unimplemented,
            Code::FailedPrecondition,
        ] {
            match Reconnect::default().after(&c, &lost(code, true)).await {
                Next::Fail(e) => assert_eq!(e.code, code, "{code:?}"),
                _ => panic!("{code:?} must end the stream"),
            }
        }
        // A stream that was answered and then lost: reopen after a while.
        for code in [Code::Unavailable, Code::Internal, Code::Unknown] {
            assert!(
                matches!(
                    Reconnect::default().after(&c, &lost(code, true)).await,
                    Next::Later
                ),
                "{code:?}"
            );
        }
        // One that could not be opened: the next endpoint at once, then
        // (every endpoint refused) a refused round.
        let mut rc = Reconnect::default();
        assert!(matches!(
            rc.after(&c, &lost(Code::Unavailable, false)).await,
            Next::NextEndpoint
        ));
        assert!(matches!(
            rc.after(&c, &lost(Code::Unavailable, false)).await,
            Next::Refused
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_login_that_cannot_get_through_is_tried_again_later() {
        // The server rejected the stream's token; the new login finds no
        // server (nothing listens on these ports): the stream is reopened
        // after the backoff, not ended.
        let c = with_credentials(
            2,
            Some(Credentials {
                user: "u".into(),
                password: "p".into(),
            }),
        );
        let l = Lost {
            endpoint: 0,
            status: Status::new(Code::Unauthenticated, "etcdserver: invalid auth token"),
            stream: true,
            token: c.current_opts().1,
        };
        let next = Reconnect::default().after(&c, &l).await;
        assert!(
            matches!(next, Next::Later),
            "a failed login that may succeed later"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn which_refusals_renew_the_token() {
        let creds = Credentials {
            user: "u".into(),
            password: "p".into(),
        };
        let c = with_credentials(1, Some(creds));
        c.auth.store("t1").unwrap();
        let g1 = c.current_opts().1;
        let void = Error::new(
            Code::from(1),
            "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
        );
        let stale = Error::new(Code::from(2), "auth: revision in header is old");
        let denied = Error::new(
            Code::from(1),
            "rpc error: code = PermissionDenied desc = etcdserver: permission denied",
        );
        let other = Error::new(
            Code::from(1),
            "etcdserver: mvcc: required revision has been compacted",
        );
        let mut rc = Reconnect::default();
        assert!(rc.renews(&c, g1, &void) && rc.renews(&c, g1, &stale));
        assert!(!rc.renews(&c, g1, &other));
        // A token issued after the last loss and still the newest: a real
        // lack of permission.
        assert!(!rc.renews(&c, g1, &denied));
        // The stream was lost while that token was current (a restart may
        // have voided it): renewed.
        rc.lost_gen = g1;
        assert!(rc.renews(&c, g1, &denied));
        // A newer login (by a unary call) also makes it suspect.
        let mut rc = Reconnect::default();
        c.auth.store("t2").unwrap();
        assert!(rc.renews(&c, g1, &denied));
        // The token renewed for a refusal is refused too: final, and a
        // loss of that kind ends the stream.
        let g2 = c.current_opts().1;
        rc.renewed_gen = Some(g2);
        assert!(!rc.renews(&c, g2, &void) && !rc.renews(&c, g2, &denied));
        let l = Lost {
            endpoint: 0,
            status: Status::new(Code::PermissionDenied, "etcdserver: permission denied"),
            stream: true,
            token: g2,
        };
        assert!(
            matches!(rc.after(&c, &l).await, Next::Fail(e) if e.code == Code::PermissionDenied)
        );
        // Without credentials nothing is renewed.
        let plain = client(1);
        plain.auth.store("t").unwrap();
        let rc = Reconnect {
            lost_gen: 99,
            ..Reconnect::default()
        };
        assert!(!rc.renews(&plain, 1, &void) && !rc.renews(&plain, 1, &denied));
    }
}

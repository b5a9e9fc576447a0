//! The auth token of one client, in one place (POD "AUTHENTICATION"): the token
//! sent with every RPC, the credentials it can be renewed from, single-flight
//! (re-)authentication, recovery from an invalid or stale token, and the
//! `auth_status` fallback for servers without the AuthStatus RPC (etcd 3.4).
//! Runs on the runtime thread; knows nothing of Perl.
//!
//! Every RPC, unary or stream, runs inside `Client::with_token(deadline,
//! |opts| attempt)`: `opts` carries the token (`opts.request(msg)` attaches
//! it); an attempt the server refuses for the token's sake is run once more
//! after the token was renewed (credentials) or dropped (unknown token, no
//! credentials). Code that cannot wrap its attempt in a closure uses the
//! parts: `call_opts` before, `recover_token` after a failure.

use std::future::Future;
use std::sync::RwLock;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::metadata::AsciiMetadataValue;
use tonic::Code;

use super::call::{Call, CallOpts, Reply};
use super::client::Client;
use super::error::{self, auth_kind, AuthKind, Error};
use super::events::{Counters, Event};
use super::pb::etcdserverpb as rpc;

/// Tokens longer than this are refused (POD "ERRORS").
pub const MAX_TOKEN: usize = 1 << 20;

/// `user` and `password` of the constructor. Debug never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Default)]
struct TokenState {
    token: Option<AsciiMetadataValue>,
    /// Bumped on every change of `token`: tells a failed request whether the
    /// token it used has been replaced meanwhile.
    gen: u64,
    /// A login found auth disabled: go on without a token until the server
    /// asks for one.
    auth_off: bool,
}

/// The token state of one client.
pub struct Auth {
    state: RwLock<TokenState>,
    /// Credentials to (re-)authenticate with; `None` for a client without
    /// them and for one given a fixed `auth_token`.
    creds: Option<Credentials>,
    /// Single flight: one login at a time; waiters reuse its result.
    flight: Mutex<()>,
}

impl Auth {
    pub fn new(token: Option<&str>, creds: Option<Credentials>) -> Auth {
        let token = token.and_then(|t| AsciiMetadataValue::try_from(t).ok());
        // A token given by the caller is used as is and never refreshed.
        let creds = if token.is_some() { None } else { creds };
        Auth {
            state: RwLock::new(TokenState {
                token,
                ..TokenState::default()
            }),
            creds,
            flight: Mutex::new(()),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&TokenState) -> R) -> R {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write<R>(&self, f: impl FnOnce(&mut TokenState) -> R) -> R {
        f(&mut self.state.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// The token to send now and its generation.
    pub fn current(&self) -> (Option<AsciiMetadataValue>, u64) {
        self.read(|s| (s.token.clone(), s.gen))
    }

    /// Stores a token from an Authenticate reply, replacing the previous one.
    /// An empty token changes nothing; an oversized one is an error.
    pub fn store(&self, token: &str) -> Result<(), Error> {
        if token.is_empty() {
            return Ok(());
        }
        if token.len() > MAX_TOKEN {
            return Err(Error::internal("auth token too large"));
        }
        let v = AsciiMetadataValue::try_from(token)
            .map_err(|_| Error::internal("auth token is not valid metadata"))?;
        self.write(|s| {
            s.token = Some(v);
            s.gen += 1;
            s.auth_off = false;
        });
        Ok(())
    }

    /// Forgets the token, unless it changed since generation `gen`.
    fn clear(&self, gen: u64, auth_off: bool) {
        self.write(|s| {
            if s.gen == gen {
                s.token = None;
                s.gen += 1;
                s.auth_off = auth_off;
            }
        });
    }

    /// No credentials and no token: nothing to attach, renew or drop.
    pub(super) fn tokenless(&self) -> bool {
        self.creds.is_none() && self.read(|s| s.token.is_none())
    }

    /// True when the next request must log in first.
    fn needs_login(&self) -> bool {
        self.creds.is_some() && self.read(|s| s.token.is_none() && !s.auth_off)
    }
}

/// The server rejected the token itself: unknown, expired, or issued before
/// the last auth change (every wording: `error::auth_kind`).
pub fn token_rejected(e: &Error) -> bool {
    matches!(
        auth_kind(e),
        Some(AuthKind::InvalidToken | AuthKind::OldRevision)
    )
}

/// The server wants a user, and the request carried no token.
fn user_missing(e: &Error) -> bool {
    auth_kind(e) == Some(AuthKind::UserEmpty)
}

fn auth_not_enabled(e: &Error) -> bool {
    auth_kind(e) == Some(AuthKind::NotEnabled)
}

impl Client {
    /// Runs `attempt` with the client's token until `deadline`: logs in
    /// first when needed; when the server rejects the token, renews or drops
    /// it (`recover_token`) and runs `attempt` once more. The error of the
    /// last attempt (or of the login) is returned.
    pub async fn with_token<T, F, Fut>(&self, deadline: Instant, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(CallOpts) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let (opts, gen) = self.call_opts(deadline).await?;
        match attempt(opts).await {
            Err(e) if self.recover_token(gen, &e, deadline).await? => {
                let (opts, _) = self.call_opts(deadline).await?;
                attempt(opts).await
            }
            done => done,
        }
    }

    /// The user's `authenticate` (POD "authenticate"): no login first; it carries the
    /// held token, but a token the server rejects must not stop the login
    /// that replaces it (one retry without). A non-empty token in the reply
    /// replaces the held one; a failure leaves it unchanged.
    pub(super) async fn user_authenticate(
        &self,
        r: rpc::AuthenticateRequest,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        let call = Call::Authenticate(r);
        let (mut opts, _) = self.current_opts();
        let mut reply = self.send(call.clone(), &opts, deadline).await;
        if matches!(&reply, Err(e) if token_rejected(e)) {
            opts.token = None;
            reply = self.send(call, &opts, deadline).await;
        }
        if let Ok(Reply::Authenticate(a)) = &reply {
            self.auth.store(&a.token)?;
        }
        reply
    }

    /// `auth_status`, answered from a probe where the server has no such RPC.
    pub(super) async fn auth_status(&self, call: Call, deadline: Instant) -> Result<Reply, Error> {
        match self.send_with_token(call, deadline).await {
            Err(e) if e.code == error::UNIMPLEMENTED && !e.internal => {
                self.auth_status_fallback(None, deadline).await
            }
            // etcd 3.5 answers a tokenless AuthStatus with "user name is
            // empty" when auth is on: that answer is the status.
            Err(e) if user_missing(&e) => self.auth_status_fallback(Some(true), deadline).await,
            done => done,
        }
    }

    /// Transport settings for the next RPC (token included) and the token's
    /// generation, for `recover_token`. Logs in first (single-flight) when
    /// the client has credentials and no token.
    pub async fn call_opts(&self, deadline: Instant) -> Result<(CallOpts, u64), Error> {
        if self.auth.needs_login() {
            self.login(None, deadline).await?;
        }
        Ok(self.current_opts())
    }

    /// Like `call_opts`, without logging in.
    pub fn current_opts(&self) -> (CallOpts, u64) {
        let (token, gen) = self.auth.current();
        (
            CallOpts {
                token,
                max_recv: self.cfg.max_recv_size,
                require_leader: self.cfg.require_leader,
            },
            gen,
        )
    }

    /// The token currently held (for streams that build their own requests).
    pub fn current_token(&self) -> Option<AsciiMetadataValue> {
        self.auth.current().0
    }

    /// After an RPC sent with token generation `gen` failed with `err`:
    /// `Ok(true)` when the token was renewed (credentials) or dropped (a
    /// rejected token without credentials, e.g. after auth_disable), so the
    /// RPC should be retried once; `Ok(false)` when the error is not about
    /// the token; `Err` when re-authentication itself failed.
    pub async fn recover_token(
        &self,
        gen: u64,
        err: &Error,
        deadline: Instant,
    ) -> Result<bool, Error> {
        let rejected = token_rejected(err);
        if self.auth.creds.is_some() {
            if rejected || user_missing(err) {
                self.login(Some(gen), deadline).await?;
                return Ok(true);
            }
            return Ok(false);
        }
        // Without credentials only an unknown token is dropped (auth was
        // disabled, or the token expired): a token merely issued before the
        // last auth change stays, so the caller sees why it failed.
        let unknown = auth_kind(err) == Some(AuthKind::InvalidToken);
        let had_token = self.auth.read(|s| s.gen == gen && s.token.is_some());
        if unknown && had_token {
            self.auth.clear(gen, false);
            return Ok(true);
        }
        Ok(false)
    }

    /// True when the client logs in with credentials, so a void token can
    /// be replaced by a new one.
    pub fn can_renew(&self) -> bool {
        self.auth.creds.is_some()
    }

    /// Replaces the token of generation `gen` by a new login (single
    /// flight: returns at once when it was replaced meanwhile).
    pub async fn renew_token(&self, gen: u64, deadline: Instant) -> Result<(), Error> {
        self.login(Some(gen), deadline).await
    }

    /// Authenticates with the credentials, one login at a time. `stale`: the
    /// generation of a token the server rejected (None: first login). A
    /// caller that waited while another did the work returns at once.
    async fn login(&self, stale: Option<u64>, deadline: Instant) -> Result<(), Error> {
        let Some(creds) = &self.auth.creds else {
            return Ok(());
        };
        let _flight = self.auth.flight.lock().await;
        let done = match stale {
            None => !self.auth.needs_login(),
            Some(g) => self.auth.current().1 != g,
        };
        if done {
            return Ok(());
        }
        let gen = self.auth.current().1;
        let call = Call::Authenticate(rpc::AuthenticateRequest {
            name: creds.user.clone(),
            password: creds.password.clone(),
        });
        let plain = CallOpts {
            token: None,
            max_recv: self.cfg.max_recv_size,
            require_leader: self.cfg.require_leader,
        };
        let result = self.login_once(call, &plain, gen, deadline).await;
        if stale.is_some() {
            Counters::add(&self.events().counters.relogins, 1);
            self.events().emit(|| Event::Relogin {
                error: result.as_ref().err().cloned(),
            });
        }
        result
    }

    /// Sends the login `call` and stores the token it gets (or forgets the
    /// token of generation `gen` when auth turned out to be off).
    async fn login_once(
        &self,
        call: Call,
        plain: &CallOpts,
        gen: u64,
        deadline: Instant,
    ) -> Result<(), Error> {
        match self.send(call, plain, deadline).await {
            Ok(Reply::Authenticate(r)) if !r.token.is_empty() => self.auth.store(&r.token),
            Ok(_) => {
                self.auth.clear(gen, true);
                Ok(())
            }
            Err(e) if auth_not_enabled(&e) => {
                self.auth.clear(gen, true);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `auth_status` where the server does not say it: without the
    /// AuthStatus RPC (etcd 3.4), an Authenticate with an empty user name,
    /// sent without a token, fails with "authentication is not enabled"
    /// exactly when auth is off, and any other answer from the server means
    /// it is on; `known` skips that probe (etcd 3.5 refusing a tokenless
    /// AuthStatus already says auth is on). The header comes from a Status
    /// call; `auth_revision` is unknown there and reported as 0.
    async fn auth_status_fallback(
        &self,
        known: Option<bool>,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        let plain = CallOpts {
            token: None,
            max_recv: self.cfg.max_recv_size,
            require_leader: self.cfg.require_leader,
        };
        let enabled = match known {
            Some(on) => on,
            None => {
                let probe = Call::Authenticate(rpc::AuthenticateRequest::default());
                match self.send(probe, &plain, deadline).await {
                    Ok(_) => true,
                    Err(e) if auth_not_enabled(&e) => false,
                    Err(e)
                        if !e.internal
                            && matches!(
                                e.code,
                                Code::InvalidArgument
                                    | Code::NotFound
                                    | Code::PermissionDenied
                                    | Code::FailedPrecondition
                                    | Code::Unauthenticated
                            ) =>
                    {
                        true
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let header = match self
            .send(Call::Status(rpc::StatusRequest {}), &plain, deadline)
            .await?
        {
            Reply::Status(s) => s.header,
            _ => None,
        };
        Ok(Reply::AuthStatus(rpc::AuthStatusResponse {
            header,
            enabled,
            auth_revision: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors() {
        let cases = [
            (16, "etcdserver: invalid auth token", true),
            (3, "etcdserver: revision of auth store is old", true),
            (3, "etcdserver: user name is empty", false),
            (9, "etcdserver: authentication is not enabled", false),
            (7, "etcdserver: permission denied", false),
        ];
        for (code, msg, want) in cases {
            assert_eq!(
                token_rejected(&Error::new(Code::from(code), msg)),
                want,
                "{msg}"
            );
        }
        assert!(user_missing(&Error::new(
            Code::InvalidArgument,
            "etcdserver: user name is empty"
        )));
        assert!(!token_rejected(&Error::internal("invalid auth token")));
    }

    #[test]
    fn store_and_clear() {
        let a = Auth::new(None, None);
        assert_eq!(a.current().1, 0);
        a.store("").unwrap();
        assert!(a.current().0.is_none(), "empty token is not stored");
        a.store("tok.1").unwrap();
        let (t, g) = a.current();
        assert_eq!(t.unwrap(), "tok.1");
        let big = "x".repeat(MAX_TOKEN + 1);
        let e = a.store(&big).unwrap_err();
        assert_eq!(e, Error::internal("auth token too large"));
        assert_eq!(
            a.current().0.unwrap(),
            "tok.1",
            "failed store keeps the token"
        );
        a.clear(g + 5, false);
        assert!(
            a.current().0.is_some(),
            "clear with an old generation is ignored"
        );
        a.clear(g, false);
        assert!(a.current().0.is_none());
    }

    fn client(token: Option<&str>) -> Client {
        Client::new(super::super::client::Config {
            max_retries: 0,
            auth_token: token.map(Into::into),
            ..super::super::client::Config::for_test(1)
        })
    }

    /// Runs `with_token` with attempts that fail with `errors` in turn (then
    /// succeed); returns the result and the token each attempt carried.
    async fn attempts(c: &Client, errors: Vec<Error>) -> (Result<(), Error>, Vec<Option<String>>) {
        let seen = std::cell::RefCell::new(Vec::new());
        let errors = std::cell::RefCell::new(errors.into_iter());
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        let r = c
            .with_token(deadline, |o| {
                seen.borrow_mut()
                    .push(o.token.map(|t| t.to_str().unwrap_or("?").to_owned()));
                let next = errors.borrow_mut().next();
                async move { next.map_or(Ok(()), Err) }
            })
            .await;
        (r, seen.into_inner())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unknown_token_without_credentials_is_dropped_once() {
        let invalid = Error::new(Code::from(16), "etcdserver: invalid auth token");
        let c = client(Some("tok"));
        let (r, seen) = attempts(&c, vec![invalid.clone()]).await;
        assert_eq!(r, Ok(()));
        assert_eq!(
            seen,
            vec![Some("tok".to_owned()), None],
            "retried without the token"
        );
        assert!(c.current_token().is_none(), "the token is gone");

        // Only once per call: a second rejection is the caller's error.
        let c = client(Some("tok"));
        let (r, seen) = attempts(&c, vec![invalid.clone(), invalid.clone()]).await;
        assert_eq!(r, Err(invalid.clone()));
        assert_eq!(seen.len(), 2);

        // Other errors, a stale (old-revision) token, and no token at all: no retry.
        for (tok, e) in [
            (
                Some("tok"),
                Error::new(Code::from(7), "etcdserver: permission denied"),
            ),
            (
                Some("tok"),
                Error::new(Code::from(3), "etcdserver: revision of auth store is old"),
            ),
            (None, invalid.clone()),
        ] {
            let c = client(tok);
            let (r, seen) = attempts(&c, vec![e.clone()]).await;
            assert_eq!(r, Err(e.clone()));
            assert_eq!(seen.len(), 1, "{}", e.message);
            assert_eq!(c.current_token().is_some(), tok.is_some(), "{}", e.message);
        }
    }

    #[test]
    fn fixed_token_is_never_refreshed_and_password_is_hidden() {
        let c = Credentials {
            user: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        let a = Auth::new(Some("given"), Some(c.clone()));
        assert!(a.creds.is_none());
        assert!(!a.needs_login());
        let b = Auth::new(None, Some(c));
        assert!(b.needs_login());
    }
}

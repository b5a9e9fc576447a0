//! A pure async etcd client for one EV::Etcd object: endpoints, settings,
//! and the unary call path with deadline, retry by RPC class and endpoint
//! failover. Runs on the runtime thread; knows nothing of Perl.

use std::time::Duration;

use tokio::time::Instant;

use super::auth::{Auth, Credentials};
use super::call::{Call, CallOpts, Reply};
use super::endpoints::Endpoints;
use super::error::{self, Error};
use super::namespace::Namespace;
use super::retry::{verdict, Backoff, Verdict};

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
}

pub struct Client {
    pub cfg: Config,
    pub endpoints: Endpoints,
    pub(crate) auth: Auth,
    pub ns: Namespace,
}

impl Client {
    pub fn new(cfg: Config) -> Client {
        let endpoints = Endpoints::new(
            cfg.endpoints.clone(),
            cfg.timeout.min(Duration::from_secs(5)),
        );
        let auth = Auth::new(cfg.auth_token.as_deref(), cfg.credentials.clone());
        Client {
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

    /// `send` inside `with_token`: the plain unary path.
    pub async fn send_with_token(&self, call: Call, deadline: Instant) -> Result<Reply, Error> {
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
        let class = call.class();
        let mut backoff = Backoff::new();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let idx = self.endpoints.current();
            let ch = self
                .endpoints
                .channel(idx)
                .map_err(|m| Error::new(error::UNAVAILABLE, m))?;
            let status = match tokio::time::timeout_at(deadline, call.clone().exec(ch, opts)).await
            {
                Err(_) => return Err(Error::deadline()),
                Ok(Ok(reply)) => return reply.checked(),
                Ok(Err(status)) => status,
            };
            let never_sent = error::never_sent(&status);
            let code = status.code() as i32;
            if never_sent || code == error::UNAVAILABLE {
                self.endpoints.failover(idx);
            }
            if verdict(
                class,
                code,
                never_sent,
                attempt,
                self.cfg.max_retries,
                self.endpoints.len(),
            ) == Verdict::Fail
            {
                return Err(Error::from_status(&status));
            }
            // Each other endpoint is tried at once; a full round backs off.
            if attempt as usize % self.endpoints.len().max(1) == 0 {
                let wake = Instant::now() + backoff.next_delay();
                if wake >= deadline {
                    return Err(Error::from_status(&status));
                }
                tokio::time::sleep_until(wake).await;
            }
        }
    }

    pub fn close(&self) {
        self.endpoints.close();
    }
}

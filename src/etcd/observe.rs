//! One `election_observe` (POD "election_observe"): a server stream of the
//! election's leader. Reconnects with backoff after a stream loss (unless
//! `auto_reconnect` is off or `max_retries` is 0) and never reports the same
//! leader value twice in a row because of a reconnect: etcd answers every
//! new Observe with the current leader, which was delivered already.
//! Runs on the runtime thread; knows nothing of Perl.

use std::convert::Infallible;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::call::Reply;
use super::client::Client;
use super::error::{self, Error};
use super::pb::v3electionpb as pb;
use super::stream::{self, Opened, Opening, ReqSink, Session};

/// Observes until the leader stream ends for good or `stop` fires.
pub async fn observe(
    client: Arc<Client>,
    name: Vec<u8>,
    auto_reconnect: bool,
    sink: ReqSink,
    stop: oneshot::Receiver<()>,
) {
    let observer = Observer {
        name: client.ns.prefixed(&name),
        client,
        auto_reconnect,
        sink,
        ever: false,
        live: false,
        last: None,
        done: false,
    };
    // An observer takes no commands: it ends by itself or by `stop`.
    let (_commands, none) = mpsc::unbounded_channel::<Infallible>();
    tokio::select! {
        _ = stop => {}
        _ = stream::supervise(observer, none) => {}
    }
}

struct Observer {
    client: Arc<Client>,
    /// The election's name, prefixed.
    name: Vec<u8>,
    auto_reconnect: bool,
    sink: ReqSink,
    /// The server ever took the stream.
    ever: bool,
    /// A leader arrived on the current stream.
    live: bool,
    /// (key, mod_revision, value) of the last leader delivered.
    last: Option<(Vec<u8>, i64, Vec<u8>)>,
    /// The last callback was made.
    done: bool,
}

impl Observer {
    fn end(&mut self, e: Error) {
        self.done = true;
        (self.sink)(Err(e), true);
    }
}

impl stream::Engine for Observer {
    type Cmd = Infallible;
    type Message = pb::LeaderResponse;
    const NAME: &'static str = "observe";

    fn client(&self) -> &Arc<Client> {
        &self.client
    }

    fn idle(&self) -> bool {
        false
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn command(&mut self, c: Infallible) {
        match c {}
    }

    fn open(&mut self, o: &Opening) -> Opened<Self::Message> {
        use pb::election_client::ElectionClient;
        self.live = false;
        let mut ec = ElectionClient::new(o.ch.clone());
        let req = o.opts.request(pb::LeaderRequest {
            name: self.name.clone(),
        });
        Box::pin(async move { ec.observe(req).await })
    }

    fn accepted(&mut self) {
        self.ever = true;
    }

    /// etcd answers an Observe only once the election has a leader.
    fn answered_at_once(&self) -> bool {
        false
    }

    fn message(&mut self, m: Self::Message, _: &Session<'_>) -> Option<Status> {
        self.live = true;
        let kv = m.kv.clone().unwrap_or_default();
        let id = (kv.key, kv.mod_revision, kv.value);
        if self.last.as_ref() != Some(&id) {
            self.last = Some(id);
            let mut reply = Reply::Leader(m);
            self.client.ns.strip(&mut reply);
            (self.sink)(Ok(reply), false);
        }
        None
    }

    fn closed(&mut self) -> bool {
        std::mem::take(&mut self.live)
    }

    fn fail_all(&mut self, e: Error) {
        self.end(e);
    }

    /// A stream that never opened fails with the setup error; one that did
    /// ends unless it is to reconnect.
    fn give_up(&mut self, _refused: bool) {
        if !self.ever {
            self.end(Error::new(error::INTERNAL, "Observe setup failed"));
        } else if !self.auto_reconnect || self.client.cfg.max_retries == 0 {
            self.end(Error::new(error::UNAVAILABLE, "Observe stream ended"));
        }
    }
}

//! One `election_observe` (POD "election_observe"): a server stream of the
//! election's leader. Reconnects with backoff after a stream loss (unless
//! `auto_reconnect` is off or `max_retries` is 0) and never reports the same
//! leader value twice in a row because of a reconnect: etcd answers every
//! new Observe with the current leader, which was delivered already.
//! Runs on the runtime thread; knows nothing of Perl.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tonic::Status;

use super::call::Reply;
use super::client::Client;
use super::error::{self, Error};
use super::pb::v3electionpb as pb;
use super::stream::{Lost, Next, Reconnect, ReqSink};

pub async fn observe(
    client: Arc<Client>,
    name: Vec<u8>,
    auto_reconnect: bool,
    sink: ReqSink,
    stop: oneshot::Receiver<()>,
) {
    tokio::select! {
        _ = stop => {}
        _ = run(client, name, auto_reconnect, &sink) => {}
    }
}

async fn run(client: Arc<Client>, name: Vec<u8>, auto_reconnect: bool, sink: &ReqSink) {
    use pb::election_client::ElectionClient;
    let name = client.ns.prefixed(&name);
    let mut rc = Reconnect::default();
    let mut ever = false;
    // (key, mod_revision, value) of the last leader delivered.
    let mut last: Option<(Vec<u8>, i64, Vec<u8>)> = None;
    loop {
        let endpoint = client.endpoints.current();
        let deadline = Instant::now() + client.cfg.timeout;
        let (opts, token) = match client.call_opts(deadline).await {
            Ok(o) => o,
            Err(e) => return sink(Err(e), true),
        };
        let mut got = false;
        let status = match client.endpoints.channel(endpoint) {
            Err(m) => Status::unavailable(m),
            Ok(ch) => {
                let mut ec = ElectionClient::new(ch);
                let req = opts.request(pb::LeaderRequest { name: name.clone() });
                match ec.observe(req).await {
                    Err(s) => s,
                    Ok(resp) => {
                        got = true;
                        ever = true;
                        let mut stream = resp.into_inner();
                        loop {
                            match stream.message().await {
                                Ok(Some(m)) => {
                                    rc.answered();
                                    let kv = m.kv.clone().unwrap_or_default();
                                    let id = (kv.key, kv.mod_revision, kv.value);
                                    if last.as_ref() != Some(&id) {
                                        last = Some(id);
                                        let mut reply = Reply::Leader(m);
                                        client.ns.strip(&mut reply);
                                        sink(Ok(reply), false);
                                    }
                                }
                                Ok(None) => {
                                    break Status::unavailable(
                                        "observe stream closed by the server",
                                    )
                                }
                                Err(s) => break s,
                            }
                        }
                    }
                }
            }
        };
        let lost = Lost {
            endpoint,
            status,
            stream: got,
            token,
        };
        let next = match rc.after(&client, &lost).await {
            Next::Fail(e) => return sink(Err(e), true),
            Next::Renewed => continue,
            next => next,
        };
        if !ever {
            match next {
                Next::NextEndpoint => continue,
                _ => {
                    return sink(
                        Err(Error::new(error::INTERNAL, "Observe setup failed")),
                        true,
                    )
                }
            }
        }
        if !auto_reconnect || client.cfg.max_retries == 0 {
            return sink(
                Err(Error::new(error::UNAVAILABLE, "Observe stream ended")),
                true,
            );
        }
        if let Next::NextEndpoint = next {
            continue;
        }
        tokio::time::sleep(rc.delay()).await;
    }
}

//! The TCP dialer behind every endpoint's tonic channel. It connects as
//! tonic's own would (TCP_NODELAY; tonic adds the connect timeout and the
//! TLS layer on top) and reports each connection's life to the endpoint's
//! transport `EndpointStates`: up when the connection is made, down when the attempt
//! fails or when an open connection is lost (the server closed it, or reading
//! or writing failed). So the health monitor sees a member die even while no
//! request is running. Runtime thread only.
//!
//! It also gathers small writes. hyper hands a request's HEADERS frame to
//! the connection before the body task has produced its DATA frame, so
//! each request left in two writes: two TCP segments, each of which wakes
//! the server's reader. The connection's flush is put off until the
//! runtime has run every task that was woken (`release_held`, from its
//! park hook, after the runtime lingered for the next request), which
//! lets them add their frames, and then everything gathered goes out in
//! one write (`Watched::poll_flush`); a runtime kept busy by other work
//! sends it anyway after `HOLD_AT_MOST`.
//!
//! Acknowledgements of the server's pings alone wait longer: for the next
//! write, which they join, or `HOLD_AT_MOST` (`hold_acks`). grpc-go pings
//! with its answers, and when a request's body arrives; h2 acknowledged
//! while it read, so the acknowledgement went out before the answer
//! reached the Perl thread, or in the middle of the server's work, each
//! time as a write of its own that woke the server. They go after the
//! frames that join them: grpc-go pings when a request's body arrives
//! only if its last ping was acknowledged, so it now pings for every
//! other request instead of every one.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::codegen::Service;

use super::endpoints::{Conn, EndpointStates};
use super::events::Counters;

/// Dials endpoint `name` of a client.
#[derive(Clone)]
pub struct Dialer {
    pub state: Arc<EndpointStates>,
    pub name: String,
}

type Dialing = Pin<Box<dyn Future<Output = io::Result<TokioIo<Watched>>> + Send>>;

impl Service<Uri> for Dialer {
    type Response = TokioIo<Watched>;
    type Error = io::Error;
    type Future = Dialing;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Dialing {
        let state = self.state.clone();
        let name = self.name.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or("localhost");
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            // `host` keeps an IPv6 address's brackets, as a socket address wants.
            match TcpStream::connect(format!("{host}:{port}")).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    state.set_conn_of(&name, Conn::Up);
                    Ok(TokioIo::new(Watched {
                        tcp,
                        state,
                        name,
                        out: Vec::new(),
                        acks: Vec::new(),
                        held: None,
                        overdue: None,
                    }))
                }
                Err(e) => {
                    state.set_conn_of(&name, Conn::Down);
                    Err(e)
                }
            }
        })
    }
}

/// The flushes put off on the runtime thread.
struct Held {
    wakers: Vec<Waker>,
    /// How many times `release_held` released them.
    releases: u64,
}

thread_local! {
    /// `None` on a thread whose runtime does not call `release_held`
    /// (a flush is then put off by one turn instead).
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Called on the runtime thread before it starts: its park hook calls
/// `release_held`.
pub fn flush_at_park() {
    HELD.with(|h| {
        *h.borrow_mut() = Some(Held {
            wakers: Vec::new(),
            releases: 0,
        })
    });
}

/// From the runtime's park hook (it has nothing left to run): the
/// flushes put off may go out; their connections are woken. True when
/// there were any (the runtime then runs them instead of parking).
pub fn release_held() -> bool {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let Some(held) = h.as_mut() else {
            return false;
        };
        held.releases += 1;
        let any = !held.wakers.is_empty();
        for w in held.wakers.drain(..) {
            w.wake();
        }
        any
    })
}

/// Puts a flush off until the next `release_held`, or for one turn where
/// `flush_at_park` was not called. Returns the ticket for `released`.
fn hold(waker: &Waker) -> u64 {
    HELD.with(|h| match h.borrow_mut().as_mut() {
        Some(held) => {
            held.wakers.push(waker.clone());
            held.releases
        }
        None => {
            waker.wake_by_ref();
            0
        }
    })
}

/// The ticket of a flush that `release_held` does not release.
const UNTIL_DUE: u64 = u64::MAX;

/// Puts off a flush of ping acknowledgements alone: until something else
/// is written (they go with it) or `HOLD_AT_MOST` has passed, so that the
/// acknowledgement of a ping that came with an answer, or before it (etcd
/// pings when a request's body arrives), does not wake the server on its
/// own. `hold` where `flush_at_park` was not called.
fn hold_acks(waker: &Waker) -> u64 {
    if HELD.with(|h| h.borrow().is_some()) {
        UNTIL_DUE
    } else {
        hold(waker)
    }
}

/// Whether `b` holds HTTP/2 PING acknowledgements and nothing else.
fn only_ping_acks(b: &[u8]) -> bool {
    let mut i = 0;
    while i + 9 <= b.len() {
        let len = (usize::from(b[i]) << 16) | (usize::from(b[i + 1]) << 8) | usize::from(b[i + 2]);
        if b[i + 3] != 6 || b[i + 4] & 1 == 0 {
            return false;
        }
        i += 9 + len;
    }
    i == b.len()
}

/// Whether the flush held with `ticket` may go out.
fn released(ticket: u64) -> bool {
    HELD.with(|h| {
        h.borrow()
            .as_ref()
            .is_none_or(|held| held.releases > ticket)
    })
}

/// A TCP connection that marks its endpoint down when it is lost.
pub struct Watched {
    tcp: TcpStream,
    state: Arc<EndpointStates>,
    name: String,
    /// Small writes gathered for the flush.
    out: Vec<u8>,
    /// Ping acknowledgements put off; they go after what joins them.
    acks: Vec<u8>,
    /// The flush is put off: the ticket of `hold`.
    held: Option<u64>,
    /// When a flush put off goes out regardless (`HOLD_AT_MOST`).
    overdue: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Writes are gathered while they add up to no more than this; a larger
/// one sends what was gathered, then goes out as it is (no copy).
const GATHER: usize = 16 * 1024;

/// The longest a flush waits for the runtime to run out of work (a
/// runtime busy with many streams may not for a long time).
const HOLD_AT_MOST: std::time::Duration = std::time::Duration::from_millis(1);

impl Watched {
    fn lost(&self) {
        self.state.set_conn_of(&self.name, Conn::Down);
    }

    fn watch<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(_)) = &r {
            self.lost();
        }
        r
    }

    /// `watch` for a write, counting the bytes written.
    fn wrote(&self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &r {
            crate::trace::wrote();
            Counters::add(&self.state.events().counters.bytes_out, *n as u64);
        }
        self.watch(r)
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) {
            let n = buf.filled().len() - before;
            // End of stream: the server closed the connection.
            if n == 0 && buf.remaining() > 0 {
                self.lost();
            }
            Counters::add(&self.state.events().counters.bytes_in, n as u64);
            if n > 0 {
                crate::trace::read();
            }
        }
        self.watch(r)
    }
}

impl Watched {
    /// Whether the flush put off has waited `HOLD_AT_MOST`.
    fn due(&mut self, cx: &mut Context<'_>) -> bool {
        self.overdue
            .as_mut()
            .is_none_or(|at| at.as_mut().poll(cx).is_ready())
    }

    /// A flush put off with `ticket` goes out after `HOLD_AT_MOST` at the
    /// latest: the timer wakes the task.
    fn hold_for_at_most(&mut self, ticket: u64, cx: &mut Context<'_>) {
        if !released(ticket) {
            let mut at = Box::pin(tokio::time::sleep(HOLD_AT_MOST));
            // Registers the timer: it wakes the task when due.
            let _ = at.as_mut().poll(cx);
            self.overdue = Some(at);
        }
    }

    /// Sends what was gathered, the acknowledgements put off last; Ready
    /// once all of it is written.
    fn send_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.out.append(&mut self.acks);
        while !self.out.is_empty() {
            let r = Pin::new(&mut self.tcp).poll_write(cx, &self.out);
            match std::task::ready!(self.wrote(r)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => drop(self.out.drain(..n)),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if self.out.len() + len <= GATHER {
            for b in bufs {
                self.out.extend_from_slice(b);
            }
            return Poll::Ready(Ok(len));
        }
        // What was gathered goes first, acknowledgements put off with it.
        std::task::ready!(self.send_out(cx))?;
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.wrote(r)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// A flush with something gathered is put off (`hold`) until the
    /// tasks already woken have run (hyper's body task among them, whose
    /// DATA frame then joins its HEADERS frame); the flush after that
    /// sends.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if !me.out.is_empty() && me.held.is_none_or(|t| t == UNTIL_DUE) && only_ping_acks(&me.out) {
            // Acknowledgements alone wait apart, and go after the frames
            // that join them: grpc-go pings again for a request's body
            // only once its last ping is acknowledged (its estimate of the
            // bandwidth), so acknowledged after the body, it pings for
            // every other request instead of every one.
            me.acks.append(&mut me.out);
        }
        if !me.out.is_empty() || !me.acks.is_empty() {
            let acks_alone = me.out.is_empty();
            if !acks_alone && me.held == Some(UNTIL_DUE) {
                // Something joined the acknowledgements: held as it is.
                me.held = None;
            }
            let held = me.held;
            match held {
                None => {
                    let ticket = if acks_alone {
                        hold_acks(cx.waker())
                    } else {
                        hold(cx.waker())
                    };
                    me.held = Some(ticket);
                    me.hold_for_at_most(ticket, cx);
                    return Poll::Pending;
                }
                Some(ticket) if !released(ticket) && !me.due(cx) => return Poll::Pending,
                Some(_) => {
                    std::task::ready!(me.send_out(cx))?;
                    me.held = None;
                    me.overdue = None;
                }
            }
        } else if me.held.is_some() {
            // A large write sent what was held.
            me.held = None;
            me.overdue = None;
        }
        let r = Pin::new(&mut me.tcp).poll_flush(cx);
        me.watch(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.send_out(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An HTTP/2 PING acknowledgement (type 6, flag ACK, 8 bytes of data).
    const PING_ACK: [u8; 17] = [0, 0, 8, 6, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

    #[test]
    fn tells_ping_acknowledgements_from_other_frames() {
        let ack = PING_ACK;
        let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let update = [0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert!(only_ping_acks(&ack));
        assert!(only_ping_acks(&[ack, ack].concat()));
        assert!(!only_ping_acks(&ping), "a ping of our own");
        assert!(!only_ping_acks(&[&ack[..], &update[..]].concat()));
        assert!(!only_ping_acks(&ack[..12]), "cut short");
        assert!(!only_ping_acks(&[0x17, 3, 3, 0, 40, 1, 2, 3, 4, 5]), "TLS");
    }

    #[test]
    fn held_flushes_wait_for_the_park_hook() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        std::thread::spawn(move || {
            // Without the park hook: woken at once, sent at the next poll.
            let t = hold(&waker);
            assert_eq!(count.0.load(Ordering::Relaxed), 1);
            assert!(released(t));
            assert!(!release_held());
            // With it: not before the runtime runs out of work.
            flush_at_park();
            let (a, b) = (hold(&waker), hold(&waker));
            assert_eq!(count.0.load(Ordering::Relaxed), 1, "held");
            assert!(!released(a) && !released(b), "held");
            assert!(release_held(), "there were held flushes");
            assert_eq!(count.0.load(Ordering::Relaxed), 3, "both woken");
            assert!(released(a) && released(b), "released");
            let c = hold(&waker);
            assert!(
                !released(c),
                "a flush put off after the release waits for the next"
            );
            assert!(release_held());
            assert!(released(c));
            assert!(!release_held(), "nothing left");
            assert_eq!(count.0.load(Ordering::Relaxed), 4);
            // Acknowledgements alone: not released (their timer sends them).
            let acks = hold_acks(&waker);
            release_held();
            assert!(!released(acks));
            assert_eq!(count.0.load(Ordering::Relaxed), 4);
        })
        .join()
        .unwrap();
    }

    /// Runs `test` with a connection made by `Dialer` and the server's
    /// end of it, on a runtime thread whose park hook releases the
    /// flushes put off, as the module's does.
    fn on_parking_runtime<F, Fut>(test: F)
    where
        F: FnOnce(Watched, tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        std::thread::spawn(|| {
            flush_at_park();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(|| {
                    release_held();
                })
                .build()
                .unwrap();
            rt.block_on(async {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let uri: Uri = format!("http://{}", l.local_addr().unwrap())
                    .parse()
                    .unwrap();
                let mut d = Dialer {
                    state: EndpointStates::unnamed(1),
                    name: "e0".into(),
                };
                let w = d.call(uri).await.unwrap().into_inner();
                let (srv, _) = l.accept().await.unwrap();
                test(w, srv).await;
            });
        })
        .join()
        .unwrap();
    }

    /// A runtime that never runs out of work (a task always ready) still
    /// sends what a connection gathered: after `HOLD_AT_MOST`.
    #[test]
    fn a_busy_runtime_still_flushes() {
        use std::sync::atomic::AtomicBool;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        on_parking_runtime(|mut w, mut srv| async move {
            let stop = Arc::new(AtomicBool::new(false));
            let busy = {
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::task::yield_now().await;
                    }
                })
            };
            let sent = async {
                w.write_all(b"ping").await.unwrap();
                w.flush().await.unwrap();
                let mut b = [0u8; 4];
                srv.read_exact(&mut b).await.unwrap();
                b
            };
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), sent).await;
            stop.store(true, Ordering::Relaxed);
            busy.await.unwrap();
            assert_eq!(
                got.expect("sent although the runtime stayed busy"),
                *b"ping"
            );
        });
    }

    /// One poll of `w`'s flush.
    fn flush_once(w: &mut Watched) -> Poll<io::Result<()>> {
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        Pin::new(w).poll_flush(&mut Context::from_waker(&waker))
    }

    /// Acknowledgements put off go after the frames that join them.
    #[test]
    fn acknowledgements_go_after_what_joins_them() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        on_parking_runtime(|mut w, mut srv| async move {
            let ack = PING_ACK;
            // HEADERS and DATA frames of a request (contents do not matter).
            let headers = [0, 0, 3, 1, 4, 0, 0, 0, 1, 9, 9, 9];
            let data = [0, 0, 2, 0, 1, 0, 0, 0, 1, 7, 7];
            w.write_all(&ack).await.unwrap();
            assert!(flush_once(&mut w).is_pending(), "held");
            w.write_all(&headers).await.unwrap();
            assert!(flush_once(&mut w).is_pending(), "held");
            w.write_all(&data).await.unwrap();
            w.flush().await.unwrap();
            let mut b = vec![0u8; ack.len() + headers.len() + data.len()];
            srv.read_exact(&mut b).await.unwrap();
            assert_eq!(b, [&headers[..], &data[..], &ack[..]].concat());
        });
    }

    /// A large write sends the acknowledgements put off with what was
    /// gathered: its flush does not wait for their timer.
    #[test]
    fn a_large_write_takes_the_acknowledgements_along() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        on_parking_runtime(|mut w, mut srv| async move {
            let ack = PING_ACK;
            let big = vec![5u8; GATHER + 1];
            w.write_all(&ack).await.unwrap();
            assert!(flush_once(&mut w).is_pending(), "held");
            w.write_all(&big).await.unwrap();
            assert!(matches!(flush_once(&mut w), Poll::Ready(Ok(()))), "sent");
            let mut b = vec![0u8; ack.len() + big.len()];
            srv.read_exact(&mut b).await.unwrap();
            assert_eq!(b, [&ack[..], &big[..]].concat());
        });
    }

    #[tokio::test(flavor = "current_thread")]
    async fn records_connect_and_loss() {
        use tokio::io::AsyncReadExt;
        let state = EndpointStates::unnamed(1);
        let mut d = Dialer {
            state: state.clone(),
            name: "e0".into(),
        };
        // refused
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri: Uri = format!("http://127.0.0.1:{port}").parse().unwrap();
        assert!(d.call(uri).await.is_err());
        assert_eq!(state.conn(0), Conn::Down);
        // connected, then closed by the server
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}", l.local_addr().unwrap())
            .parse()
            .unwrap();
        let io = d.call(uri).await.unwrap();
        assert_eq!(state.conn(0), Conn::Up);
        let (srv, _) = l.accept().await.unwrap();
        drop(srv);
        let mut w = io.into_inner();
        let mut b = [0u8; 8];
        assert_eq!(w.read(&mut b).await.unwrap(), 0);
        assert_eq!(state.conn(0), Conn::Down);
    }
}

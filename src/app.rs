//! Wiring and shutdown order: check the static dir, load TLS, start the channels (and reach Redis
//! with `--redis`), bind, start the connections, the heartbeat and the sources; reload the
//! certificate on SIGHUP; on a signal (or the end of input with --exit-on-eof) stop accepting,
//! end every stream after it delivered what it holds, and wait for the connections. With
//! `--drain`, a signal first ends the streams spread over its window (the end of input does not:
//! it means "deliver everything", not "move elsewhere").

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{AllowedHosts, Authorizer, Tokens};
use crate::bus::{Bus, RedisBus};
use crate::channel::Channel;
use crate::channels::{Channels, Role};
use crate::cli::Config;
use crate::control::{Control, Drain};
use crate::errors::describe;
use crate::occupancy::Occupancy;
use crate::panics;
use crate::presence::Presence;
use crate::routes;
use crate::serving::activation;
use crate::serving::timeouts::{TEST_TIMEOUTS_ENV, Timeouts};
use crate::serving::tls::Tls;
use crate::serving::{self, Serving};
use crate::signals::Stops;
use crate::source::stdin::StdinSource;
use crate::source::ticker::Ticker;

/// How long open streams get to finish after a signal.
const SIGNAL_GRACE: Duration = Duration::from_millis(1500);
/// Pending connections the kernel queues for us, room for a crowd reconnecting at once: the
/// accept loop only hands each socket to its task, so the queue drains as fast as the kernel
/// fills it, and this covers a burst while the one core also works on handshakes. Linux caps
/// it at `net.core.somaxconn` (4096 by default since 5.4; 128 before): past the queue, a SYN
/// goes unanswered and the client retries it a second later, so a storm larger than the queue
/// is slowed, not refused (see docs/security.md).
const LISTEN_BACKLOG: u32 = 4096;

pub async fn run(config: Config) -> anyhow::Result<()> {
    // A panic ends its connection alone, or the process when the task is one it cannot lose.
    panics::install(serving::panicking_peer);
    if let Some(dir) = &config.serve.static_dir {
        check_static_dir(dir)?;
    }
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(Tls::load(&files.cert, &files.key)?)),
        None => None,
    };
    let timeouts = match std::env::var(TEST_TIMEOUTS_ENV) {
        Ok(spec) => Timeouts::overridden(&spec)?,
        Err(_) => Timeouts::default(),
    };
    let tokens = match &config.serve.tokens {
        Some(tokens) => Some(Tokens::load(tokens)?),
        None => None,
    };
    let authorizer = match &config.serve.authorize {
        Some(authorize) => Some(Authorizer::new(authorize)?),
        None => None,
    };
    let mut control = Control::with_peer_limit(config.max_clients, config.max_streams_per_peer);
    if let Some(window) = config.drain {
        control = control.with_drain(Drain::new(window, config.serve.retry));
    }
    let control = Arc::new(control);
    let channels = Arc::new(Channels::new(
        control.clone(),
        config.channels.clone(),
        config.max_channels,
    ));
    // Held by the sources for the process's life, so it is never reclaimed.
    let input_channel = channels
        .get_or_create(&config.channel, Role::Publisher)
        .map_err(|refusal| {
            anyhow::anyhow!(
                "cannot open channel {} (--channel): {refusal}",
                config.channel
            )
        })?;
    let bus = match config.redis {
        Some(redis) => Bus::Redis(RedisBus::connect(redis, channels.clone()).await?),
        None => Bus::Local,
    };
    // Taken before any stream opens, so the first reader of every channel is seen.
    let hooks_closing = CancellationToken::new();
    let hooks = match config
        .hooks
        .any()
        .then(|| control.occupancy.take())
        .flatten()
    {
        Some(changes) => {
            let redis = match &bus {
                Bus::Redis(redis) => Some(redis.clone()),
                Bus::Local => None,
            };
            let run = Occupancy::run(config.hooks, redis, changes, hooks_closing.clone());
            Some(tokio::spawn(run))
        }
        None => None,
    };
    // Ended after the streams, so what they left is told to Redis before the process goes.
    let presence_closing = CancellationToken::new();
    let (presence, telling) = match config.presence {
        true => {
            let redis = match &bus {
                Bus::Redis(redis) => Some(redis.clone()),
                Bus::Local => None,
            };
            let (presence, telling) = Presence::new(redis, presence_closing.clone());
            (Some(presence), telling)
        }
        false => (None, None),
    };
    let mut serve = config.serve;
    let listeners = match activation::inherited()? {
        Some(listeners) => {
            tracing::info!(
                sockets = listeners.len(),
                "serving on the sockets systemd passed (LISTEN_FDS); --bind and --port are not used"
            );
            listeners
        }
        None => vec![bind(config.listen)?],
    };
    let mut stops = Stops::listen();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let guarded = serve.auth.is_some() || serve.tokens.is_some() || serve.authorize.is_some();
    for listener in &listeners {
        let address = listener.local_addr()?;
        // Printed even under -q: it is how a script learns the port of `--port 0`.
        eprintln!("listening on {scheme}://{address}");
        if !guarded && !address.ip().is_loopback() {
            tracing::warn!(
                "serving {address} without --auth or tokens: anyone who can reach this port reads the stream"
            );
        }
    }
    // The Host check follows where the server really listens: a socket systemd passed may be
    // open to the network whatever --bind says.
    let loopback_only = listeners
        .iter()
        .all(|listener| listener.local_addr().is_ok_and(|a| a.ip().is_loopback()));
    serve.allowed_hosts = match serve.allowed_hosts.take() {
        Some(hosts) if hosts.is_empty() && !loopback_only => None,
        None if loopback_only => Some(AllowedHosts::default()),
        hosts => hosts,
    };
    tokio::spawn(reload_on_hangup(tls.clone()));

    let connections = TaskTracker::new();
    let serving = Serving {
        routes: routes::routes(
            channels.clone(),
            bus.clone(),
            &serve,
            tokens,
            authorizer,
            presence,
        ),
        control: control.clone(),
        tls,
        tasks: connections.clone(),
        timeouts,
        max_connections: config.max_connections,
    };
    serving::accept_all(listeners, serving);
    if let Some(every) = config.keep_alive {
        let channels = channels.clone();
        tokio::spawn(async move { channels.run_heartbeat(every).await });
    }
    let input = tokio::spawn(run_input(
        bus,
        channels.clone(),
        input_channel,
        config.ticker,
        config.stdin,
        config.wait_clients,
    ));

    let input_ended = tokio::select! {
        () = stops.counted(1) => {
            tracing::info!("signal received; shutting down");
            false
        }
        ended = input, if config.exit_on_eof => {
            ended.context("the input task failed")??;
            tracing::info!("input ended; delivering to connected clients, then exiting");
            true
        }
    };
    // No hook starts from now on (streams ending at shutdown vacate nothing); a running one
    // gets SIGTERM.
    hooks_closing.cancel();
    if !input_ended {
        drain_streams(&control, &mut stops).await;
    }
    // Accept nothing new; each stream sends what it holds, then ends; idle connections close
    // (HTTP/2 ones with GOAWAY).
    channels.close();
    connections.close();
    if let Some(hooks) = hooks
        && tokio::time::timeout(SIGNAL_GRACE, hooks).await.is_err()
    {
        tracing::warn!("a hook still runs after SIGTERM and the grace period; exiting without it");
    }
    if input_ended {
        // Everything must reach the clients: wait as long as they keep reading.
        drain(&control, &connections, config.channels.stall_timeout).await;
    } else if tokio::time::timeout(SIGNAL_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period; exiting"
        );
    }
    presence_closing.cancel();
    if let Some(telling) = telling
        && tokio::time::timeout(SIGNAL_GRACE, telling).await.is_err()
    {
        tracing::warn!("Redis was not told who left in time; their lease ends it (--presence)");
    }
    Ok(())
}

/// `--drain`: refuses new streams and ends the open ones spread over the window (each at its
/// place: `control/drain.rs`), while the port stays open for probes and refusals; returns when
/// the last stream ended, at a second signal, or when streams outlast the window by the grace
/// period (a client that reads nothing cannot be told its last words). Without `--drain`,
/// returns at once.
async fn drain_streams(control: &Control, stops: &mut Stops) {
    let Some(drain) = control.begin_drain() else {
        return;
    };
    let window = drain.window();
    tracing::info!(
        streams = control.open_streams(),
        "draining: new streams are refused; the open ones end over {} (--drain)",
        humantime::format_duration(window)
    );
    tokio::select! {
        () = control.streams_ended() => tracing::info!("drained: every stream ended"),
        () = stops.counted(2) => tracing::info!(
            open = control.open_streams(),
            "second signal: ending the remaining streams now"
        ),
        () = tokio::time::sleep(window + SIGNAL_GRACE) => tracing::warn!(
            open = control.open_streams(),
            "streams still open after the drain; ending them"
        ),
    }
}

/// Waits for every connection to deliver its last frame, for as long as they make progress:
/// a client that stops reading is given up on after `stall_timeout`, as during streaming.
async fn drain(control: &Control, connections: &TaskTracker, stall_timeout: Duration) {
    let mut last_writes = control.writes();
    loop {
        tokio::select! {
            () = connections.wait() => return,
            () = tokio::time::sleep(stall_timeout) => {
                let writes = control.writes();
                if writes == last_writes {
                    tracing::warn!(open = connections.len(), "clients stopped reading; exiting without them");
                    return;
                }
                last_writes = writes;
            }
        }
    }
}

/// Runs the sources; returns when input has ended: stdin's end when it is read, else the
/// ticker's (`--count`). A ticker that runs beside stdin goes on until shutdown.
async fn run_input(
    bus: Bus,
    channels: Arc<Channels>,
    channel: Arc<Channel>,
    ticker: Option<Ticker>,
    stdin: Option<StdinSource>,
    wait_clients: Option<usize>,
) -> anyhow::Result<()> {
    if let Some(count) = wait_clients {
        tracing::info!(
            count,
            "waiting for clients before reading input (--wait-clients)"
        );
        channel.wait_for_clients(count).await;
    }
    let ticker = ticker.map(|ticker| tokio::spawn(ticker.run(bus.clone(), channel.clone())));
    match (stdin, ticker) {
        (Some(stdin), _) => {
            if let Err(err) = stdin.run(bus, channels, channel).await {
                tracing::error!("reading stdin failed: {err}; no more input");
            }
        }
        (None, Some(ticker)) => ticker.await.context("the ticker failed")?,
        (None, None) => {}
    }
    Ok(())
}

fn check_static_dir(dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir);
    if let Err(err) = entries {
        bail!(
            "cannot read static dir {} (--static-dir): {}",
            dir.display(),
            describe(&err)
        );
    }
    Ok(())
}

fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    let listen = || -> io::Result<TcpListener> {
        let socket = match address {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // A restart can take the port while old connections linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen()
        .map_err(|err| anyhow::anyhow!(describe(&err)))
        .with_context(|| format!("cannot listen on {address} (--bind, --port)"))
}

/// SIGHUP re-reads the certificate and key (a renewal); a bad new pair leaves the old in use.
/// Without TLS there is nothing to reload, and SIGHUP is only logged: its default action would
/// end the process, and a service manager's reload (`ExecReload`) sends it whatever the flags.
#[cfg(unix)]
async fn reload_on_hangup(tls: Option<Arc<Tls>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; the certificate will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        let Some(tls) = &tls else {
            tracing::info!("SIGHUP: nothing to reload (no --tls-cert)");
            continue;
        };
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
            Err(err) => tracing::error!("SIGHUP: keeping the current certificate: {err:#}"),
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(_tls: Option<Arc<Tls>>) {}

//! `raftmq`: parse the command line, load configuration, wire storage, Raft and the broker,
//! serve until SIGTERM or Ctrl-C, then shut down cleanly.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use openraft::{Raft, SnapshotPolicy};
use raftmq::auth::Auth;
use raftmq::broker::Broker;
use raftmq::cli::{Cli, Command, RestoreArgs};
use raftmq::cluster::{Cluster, ClusterOptions, SingleNodeNetwork};
use raftmq::config::{Config, LogFormat};
use raftmq::limits::Door;
use raftmq::metrics::Metrics;
use raftmq::router::Router;
use raftmq::{conn, sys, tls};
use raftmq_raft::network::{Network, NetworkConfig, TlsFiles};
use raftmq_raft::NodeId;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Ctl(args)) => return raftmq::ctl::run(args),
        Some(Command::Restore(args)) => return restore(&args),
        Some(Command::Passwd(args)) => return raftmq::auth::passwd::run(args),
        None => cli.serve,
    };
    let config = match args.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("raftmq: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raftmq: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftmq: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `raftmq restore FILE --data-dir DIR`: exit 0 restored, 1 refused (the reason printed).
fn restore(args: &RestoreArgs) -> ExitCode {
    let run = || -> anyhow::Result<String> {
        let bytes = std::fs::read(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        let backup = raftmq_raft::Backup::decode(&bytes)
            .with_context(|| format!("{}", args.file.display()))?;
        let stats = raftmq_storage::restore(&args.data_dir, &backup, args.force)?;
        Ok(format!(
            "restored {} (applied index {} of its cluster) into {}: {} sessions, {} \
             subscriptions, {} retained messages, {} queued and {} in-flight messages\n",
            args.file.display(),
            backup.applied_index,
            args.data_dir.display(),
            stats.sessions,
            stats.subscriptions,
            stats.retained,
            stats.queued_messages,
            stats.inflight_messages,
        ))
    };
    match run() {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raftmq restore: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn"));
    // Colour only on a terminal, so logs piped to files or collectors stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tls::install_crypto_provider();
    let node_id = NodeId(config.node_id);
    let mqtt_addr = config.mqtt_listen()?;
    let tls_addr = config.tls_listen()?;
    let ws_addr = config.ws_listen()?;
    let wss_addr = config.wss_listen()?;
    let acceptor = if tls_addr.is_some() || wss_addr.is_some() {
        Some(tls::acceptor(&config.tls)?)
    } else {
        None
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;

    let metrics = Arc::new(Metrics::default());
    let auth = Arc::new(Auth::load(&config.auth, metrics.clone()).context("[auth] files")?);
    let door = Arc::new(Door::new(&config, metrics.clone()).context("[connections]")?);
    let router = Arc::new(Router::new(metrics.clone(), config.limits.max_pending_qos0));
    let store = raftmq_storage::open(
        &config.data_dir,
        raftmq_storage::StoreOptions::default(),
        router.clone(),
    )
    .await
    .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let state = store.state.clone();
    let fresh = store.is_fresh();
    let restored = store.is_restored();
    let fsyncs = metrics.clone();
    store
        .log
        .stats()
        .observe_fsyncs(Box::new(move |took| fsyncs.fsync_latency.observe(took)));

    let r = &config.raft;
    let raft_config = openraft::Config {
        cluster_name: "raftmq".into(),
        heartbeat_interval: r.heartbeat_ms,
        election_timeout_min: r.election_timeout_min_ms,
        election_timeout_max: r.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(r.snapshot_every_entries),
        max_in_snapshot_log_to_keep: 1000,
        install_snapshot_timeout: 10_000,
        ..Default::default()
    }
    .validate()
    .context("raft configuration")?;
    let members = config.initial_members()?;
    let clustered = !config.raft.secret.is_empty();
    let (raft, raft_auth) = if clustered {
        let tls = (!config.raft.tls_cert_file.is_empty()).then(|| TlsFiles {
            cert: config.raft.tls_cert_file.clone().into(),
            key: config.raft.tls_key_file.clone().into(),
            ca: config.raft.tls_ca_file.clone().into(),
            server_name: None,
        });
        let net_config = NetworkConfig {
            tls,
            ..NetworkConfig::new(node_id, config.raft.secret.clone())
        };
        let network =
            Network::new(&net_config).context("raft network (raft.secret, raft.tls_*)")?;
        let auth = network.auth();
        let raft = Raft::new(
            node_id,
            Arc::new(raft_config),
            network,
            store.log,
            store.state_machine,
        )
        .await
        .context("cannot start raft")?;
        (raft, Some(auth))
    } else {
        let raft = Raft::new(
            node_id,
            Arc::new(raft_config),
            SingleNodeNetwork,
            store.log,
            store.state_machine,
        )
        .await
        .context("cannot start raft")?;
        (raft, None)
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // The Raft listener starts before initializing, so the first election can reach us.
    if let Some(auth) = raft_auth {
        let addr = config.raft_listen()?;
        let listener = bind(addr, "raft.raft_listen").await?;
        info!(addr = %listener.local_addr().unwrap_or(addr), "Raft listening");
        let mut stop = shutdown_rx.clone();
        tokio::spawn(raftmq_raft::network::serve(
            listener,
            raft.clone(),
            auth,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
    }

    // A fresh data directory forms the cluster from the initial members. Every member may
    // do this with the same list (openraft: initializing several nodes with the same
    // membership is safe); one that already heard from a leader is refused, harmlessly.
    // A member started after the others formed the cluster first listens for their leader
    // for an election timeout: initializing would give it a term-1 vote that outranks the
    // leader's in openraft's ordering, and the leader would step down for nothing.
    let heard_leader = fresh && clustered && {
        let mut metrics = raft.metrics();
        let wait = Duration::from_millis(r.election_timeout_max_ms);
        tokio::time::timeout(wait, metrics.wait_for(|m| m.current_leader.is_some()))
            .await
            .is_ok_and(|r| r.is_ok())
    };
    if heard_leader {
        info!("not initializing: joined the running cluster's leader");
    } else if fresh && config.raft.join {
        info!("waiting to be added to a cluster through its admin API (raft.join)");
    } else if fresh {
        match raft.initialize(members.clone()).await {
            Ok(()) => info!(members = members.len(), "initialized a new cluster"),
            Err(e) => info!(detail = %e, "not initializing: already part of a cluster"),
        }
    }
    if restored {
        tokio::spawn(seal_restored(raft.clone()));
    }
    let cluster = Cluster::start(
        raft.clone(),
        state,
        ClusterOptions {
            node_id,
            proposal_timeout: Duration::from_millis(r.proposal_timeout_ms),
            batch_max_ops: r.batch_max_ops,
            max_inflight_batches: r.max_inflight_batches,
            tick: Duration::from_millis(r.tick_ms),
            lease: Duration::from_millis(r.lease_ms),
            metrics: metrics.clone(),
        },
    );
    // From here on the VIP follows the active flag: added when this node serves, removed
    // first thing when it stops.
    let vip = raftmq::vip::spawn(&config.vip, node_id, cluster.active_changes())
        .context("[vip] configuration")?;
    let broker = Arc::new(Broker::new(
        config.clone(),
        cluster.clone(),
        router.clone(),
        auth.clone(),
        door,
        metrics,
        shutdown_rx,
    ));
    tokio::spawn(reload_on_sighup(auth.clone()));
    tokio::spawn(raftmq::limits::sample_queued_bytes(
        cluster.state().clone(),
        broker.metrics.clone(),
    ));

    let admin_listener = bind(config.admin.listen_addr()?, "admin.listen").await?;
    let admin_ctx = raftmq::admin::AdminContext::new(
        cluster.clone(),
        broker.metrics.clone(),
        vip.clone(),
        auth,
        &config,
    );
    let mut admin_stop = broker.shutdown.clone();
    tokio::spawn(raftmq::admin::serve(
        admin_listener,
        admin_ctx,
        async move {
            let _ = admin_stop.wait_for(|s| *s).await;
        },
    ));

    let mqtt = bind(mqtt_addr, "mqtt.listen").await?;
    info!(addr = %mqtt.local_addr().unwrap_or(mqtt_addr), "MQTT listening");
    tokio::spawn(conn::serve_tcp(mqtt, broker.clone()));
    if let (Some(addr), Some(acceptor)) = (tls_addr, acceptor.clone()) {
        let listener = bind(addr, "tls.listen").await?;
        info!(addr = %listener.local_addr().unwrap_or(addr), "MQTT over TLS listening");
        tokio::spawn(conn::serve_tls(listener, acceptor, broker.clone()));
    }
    if let Some(addr) = ws_addr {
        let listener = bind(addr, "mqtt.ws_listen").await?;
        let addr = listener.local_addr().unwrap_or(addr);
        info!(%addr, path = conn::WS_PATH, "MQTT over WebSocket listening");
        tokio::spawn(conn::serve_ws(listener, None, broker.clone()));
    }
    if let (Some(addr), Some(acceptor)) = (wss_addr, acceptor) {
        let listener = bind(addr, "mqtt.wss_listen").await?;
        let addr = listener.local_addr().unwrap_or(addr);
        info!(%addr, path = conn::WS_PATH, "MQTT over WebSocket over TLS listening");
        tokio::spawn(conn::serve_ws(listener, Some(acceptor), broker.clone()));
    }
    if config.sys.interval_secs > 0 {
        tokio::spawn(sys::run(
            broker.clone(),
            Duration::from_secs(config.sys.interval_secs),
        ));
    }
    if !cluster.wait_active(Duration::from_secs(30)).await {
        warn!("not serving yet: this node is not the active leader");
    }

    wait_for_signal().await;
    // The VIP goes before the connections, so clients that reconnect at once do not come
    // back to this node.
    vip.release().await;
    info!("shutting down: closing connections");
    let _ = shutdown_tx.send(true);
    // Connections see the signal, write their DISCONNECT and drop; wait for them briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while router.connection_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Proposals already handed to Raft finish (or time out) before Raft stops.
    raft.shutdown().await.ok();
    info!("stopped");
    Ok(())
}

/// A node seeded by `raftmq restore` holds the backup's state beneath its log. Once the
/// first entry (the membership) is applied, fold everything into a snapshot and purge the
/// log up to it, so that a member added later (empty, with `--join`) receives that snapshot
/// instead of replaying the log onto an empty state.
async fn seal_restored(raft: Raft<raftmq_raft::TypeConfig>) {
    let mut metrics = raft.metrics();
    let applied = match metrics.wait_for(|m| m.last_applied.is_some()).await {
        Ok(m) => m.last_applied,
        Err(_) => return,
    };
    let Some(applied) = applied else {
        return;
    };
    if raft.trigger().snapshot().await.is_err() {
        return;
    }
    let built = metrics
        .wait_for(|m| m.snapshot.is_some_and(|s| s.index >= applied.index))
        .await
        .is_ok();
    if built && raft.trigger().purge_log(applied.index).await.is_ok() {
        info!(index = applied.index, "restored state saved as a snapshot");
    }
}

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({key})"))
}

/// SIGHUP reloads the password and ACL files, as it does for Mosquitto. Connected clients
/// stay; a file that does not parse leaves the previous ones in force.
async fn reload_on_sighup(auth: Arc<Auth>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP: reload through the admin API");
                return;
            }
        };
        while hup.recv().await.is_some() {
            info!("SIGHUP: reloading the password and ACL files");
            if let Err(e) = auth.reload() {
                warn!(error = %e, "reload failed; the previous files stay in force");
            }
        }
    }
    #[cfg(not(unix))]
    drop(auth);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! Startup and shutdown of `floe serve`.
//!
//! 1. Lock the data directory (one broker per directory).
//! 2. Load topic metadata and the producer-id block.
//! 3. Start one glommio executor per core. Each shard serves its inbox,
//!    recovers the partitions it owns, then binds the Kafka address (all
//!    shards bind it; the kernel spreads connections).
//! 4. Start the admin HTTP server (`/health`, `/metrics`, `/v1/...`) on a
//!    small tokio runtime: the cloud/admin plane, off the data path.
//! 5. On SIGTERM / SIGINT: stop accepting, finish in-flight requests, close
//!    every partition (fdatasync + clean-shutdown marker), exit.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use event_listener::Event;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::BrokerConfig;
use crate::log;
use crate::metrics::Metrics;
use crate::producer_ids::ProducerIds;
use crate::shard::{Cluster, Shard, ShardMsg};
use crate::topics::TopicRegistry;
use crate::{admin, admin_http, net};

/// Why the broker could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another floe process")]
    Locked { path: PathBuf },
    #[error(transparent)]
    Topics(#[from] crate::topics::TopicError),
    #[error(transparent)]
    ProducerIds(#[from] crate::producer_ids::ProducerIdError),
    #[error("invalid listen address {addr}")]
    Address { addr: String },
    #[error("cannot bind {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start shard {shard}: {reason}")]
    Shard { shard: usize, reason: String },
    #[error("cannot load the schema registry")]
    Registry(#[from] crate::registry::LoadError),
    #[error("tiered storage cannot start")]
    Tier(#[from] crate::tier::TierError),
}

/// Shared handles that outlive the shards: for the admin plane and shutdown.
pub struct Runtime {
    pub cluster: Arc<Cluster>,
    pub ready: Arc<AtomicBool>,
    pub shutdown: Arc<Event>,
    /// The Iceberg projector, once started.
    #[cfg(feature = "iceberg")]
    pub projector: std::sync::OnceLock<Arc<crate::projector::Projector>>,
}

fn lock_data_dir(dir: &std::path::Path) -> Result<File, ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServerError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(ServerError::Locked {
            path: dir.to_path_buf(),
        }),
    }
}

/// Runs the broker until a shutdown signal; blocks the calling thread.
pub fn serve(config: BrokerConfig) -> Result<(), ServerError> {
    let _lock = lock_data_dir(&config.data_dir)?;
    let kafka_addr: SocketAddr = config
        .kafka_addr
        .parse()
        .map_err(|_| ServerError::Address {
            addr: config.kafka_addr.clone(),
        })?;
    // Shards bind with SO_REUSEPORT, which would silently share the port
    // with another broker of the same user: refuse when something answers.
    let probe = if kafka_addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), kafka_addr.port())
    } else {
        kafka_addr
    };
    // A killed broker's listener can outlive it briefly (io_uring tears its
    // sockets down asynchronously), so only a listener that stays counts.
    let mut answered = 0;
    while std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(300)).is_ok() {
        answered += 1;
        if answered == 20 {
            return Err(ServerError::Bind {
                addr: config.kafka_addr.clone(),
                source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let meta_dir = config.data_dir.join("meta");
    let topics = TopicRegistry::open(&meta_dir)?;
    let producer_ids = ProducerIds::open(&meta_dir)?;
    let (tier, cloud_plane) = crate::tier::Tier::start(config.tier.clone(), &config.cluster_id)?;
    tracing::info!(object_store = tier.url(), "object store reachable");
    let cores = config.cores.max(1);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..cores)
        .map(|_| async_channel::unbounded::<ShardMsg>())
        .unzip();
    let cluster = Arc::new_cyclic(|weak| Cluster {
        config: Arc::new(config.clone()),
        topics,
        producer_ids,
        inboxes: senders,
        shutting_down: AtomicBool::new(false),
        metrics: Metrics::default(),
        disk: crate::disk_guard::DiskGuard::new(&config.data_dir, config.min_free_bytes),
        schemas: crate::registry::Schemas::new(weak.clone()),
        tier: Some(tier),
        fences: Arc::default(),
    });
    cluster.disk.start();
    let runtime = Arc::new(Runtime {
        cluster: cluster.clone(),
        ready: Arc::new(AtomicBool::new(false)),
        shutdown: Arc::new(Event::new()),
        #[cfg(feature = "iceberg")]
        projector: std::sync::OnceLock::new(),
    });
    let admin = admin_http::start(runtime.clone(), cloud_plane.handle()).map_err(|source| {
        ServerError::Bind {
            addr: config.admin_addr.clone(),
            source,
        }
    })?;

    let listening = Arc::new(AtomicUsize::new(0));
    let (failed_tx, failed_rx) = mpsc::channel::<ServerError>();
    let registry = {
        let failed_tx = failed_tx.clone();
        crate::registry::start(cluster.clone(), cloud_plane.handle(), move |e| {
            let _ = failed_tx.send(ServerError::Registry(e));
        })
        .map_err(|source| ServerError::Bind {
            addr: config.registry_addr.clone(),
            source,
        })?
    };
    #[cfg(feature = "iceberg")]
    {
        let projector =
            crate::projector::Projector::start(&cluster).map_err(|e| ServerError::Shard {
                shard: 0,
                reason: format!("cannot start the iceberg projector: {e}"),
            })?;
        let _ = runtime.projector.set(projector);
    }
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::with_capacity(cores);
    for (id, inbox) in receivers.into_iter().enumerate() {
        let cluster = cluster.clone();
        let runtime = runtime.clone();
        let listening = listening.clone();
        let failed_tx = failed_tx.clone();
        let placement = if cores <= available {
            Placement::Fixed(id)
        } else {
            Placement::Unbound
        };
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("floe-shard-{id}"))
            .spawn(move || async move {
                let shard = Shard::new(id, cluster.clone(), log::Disk::Real);
                glommio::spawn_local(shard.clone().serve_inbox(inbox)).detach();
                {
                    let shard = shard.clone();
                    glommio::spawn_local(async move { shard.groups.run_timers().await }).detach();
                }
                if id == 0
                    && let Err((code, message)) = admin::ensure_internal_topics(&shard).await
                {
                    let _ = failed_tx.send(ServerError::Shard {
                        shard: id,
                        reason: format!("cannot create internal topics ({code}): {message}"),
                    });
                    return;
                }
                shard.open_owned_partitions().await;
                // Produce validates against the registry: take Kafka
                // clients only once `_schemas` is replayed.
                {
                    let shard = shard.clone();
                    let every =
                        Duration::from_millis(cluster.config.tier.upload_interval_ms.max(10));
                    glommio::spawn_local(async move {
                        loop {
                            glommio::timer::sleep(every).await;
                            if shard.cluster.is_shutting_down() {
                                break;
                            }
                            shard.tier_pass().await;
                        }
                    })
                    .detach();
                }
                let stop = runtime.shutdown.listen();
                if !cluster.is_shutting_down() {
                    futures_lite::future::or(cluster.schemas.wait_loaded(), stop).await;
                }
                if !cluster.schemas.is_loaded() {
                    shard.close_all().await;
                    return;
                }
                let listener = match glommio::net::TcpListener::bind(kafka_addr) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = failed_tx.send(ServerError::Bind {
                            addr: kafka_addr.to_string(),
                            source: std::io::Error::other(e.to_string()),
                        });
                        return;
                    }
                };
                if listening.fetch_add(1, Ordering::SeqCst) + 1 == cluster.shards() {
                    runtime.ready.store(true, Ordering::SeqCst);
                    tracing::info!(
                        kafka = %kafka_addr,
                        advertised = %cluster.config.advertised_addr,
                        admin = %cluster.config.admin_addr,
                        registry = %cluster.config.registry_addr,
                        shards = cluster.shards(),
                        data = %cluster.config.data_dir.display(),
                        "floe is ready"
                    );
                }
                {
                    let shard = shard.clone();
                    glommio::spawn_local(async move {
                        loop {
                            glommio::timer::sleep(Duration::from_secs(5)).await;
                            if shard.cluster.is_shutting_down() {
                                break;
                            }
                            shard.apply_retention().await;
                        }
                    })
                    .detach();
                }
                let stop = runtime.shutdown.listen();
                if !cluster.is_shutting_down() {
                    futures_lite::future::or(net::serve(shard.clone(), listener), stop).await;
                }
                // Let in-flight requests finish their current step.
                glommio::timer::sleep(Duration::from_millis(50)).await;
                shard.close_all().await;
                tracing::info!(shard = id, "shard stopped");
            })
            .map_err(|e| ServerError::Shard {
                shard: id,
                reason: e.to_string(),
            })?;
        handles.push(handle);
    }
    drop(failed_tx);

    // Wait for a signal or a shard failure.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]);
    let stop_reason: Result<(), ServerError> = match signals {
        Ok(mut signals) => loop {
            if let Some(sig) = signals.pending().next() {
                tracing::info!(signal = sig, "shutting down");
                break Ok(());
            }
            match failed_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(err) => break Err(err),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Every shard has returned: nothing left to serve.
                Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot install signal handlers");
            Ok(())
        }
    };
    // In-flight registry writes finish while the shards still run.
    registry.stop();
    cluster.shutting_down.store(true, Ordering::SeqCst);
    runtime.shutdown.notify(usize::MAX);
    for inbox in &cluster.inboxes {
        let _ = inbox.try_send(ShardMsg::Shutdown);
    }
    for h in handles {
        let _ = h.join();
    }
    admin.stop();
    if let Some(tier) = &cluster.tier {
        tier.release_lease();
    }
    // Uploads in flight are abandoned: their segments stay local and the
    // next start uploads them again (uploads are idempotent).
    cloud_plane.shutdown_timeout(Duration::from_secs(5));
    stop_reason
}

impl Runtime {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

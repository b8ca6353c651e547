//! The admin HTTP server: `/health`, `/metrics` (Prometheus) and a small
//! JSON API, on the cloud plane's tokio runtime (shared with the shadow index and the registry),
//! never on a data-plane shard.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;

use crate::config::{TOPIC_CONFIGS, TopicConfig};
use crate::server::Runtime;

/// A running admin server; `stop` ends it.
pub struct AdminServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<(tokio::runtime::Handle, tokio::task::JoinHandle<()>)>,
}

impl AdminServer {
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some((handle, task)) = self.task.take() {
            let _ = handle.block_on(task);
        }
    }
}

/// Binds the admin address and serves it on the cloud plane's runtime.
pub fn start(
    runtime: Arc<Runtime>,
    cloud: &tokio::runtime::Handle,
) -> std::io::Result<AdminServer> {
    let addr = runtime.cluster.config.admin_addr.clone();
    let listener = std::net::TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = cloud.spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot serve the admin address");
                return;
            }
        };
        let app = Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .route("/v1/topics", get(topics))
            .route("/v1/topics/{name}", get(topic))
            .route("/v1/tier/status", get(tier_status))
            .route("/v1/iceberg/status", get(iceberg_status))
            .route("/v1/tier/recover", axum::routing::post(tier_recover))
            .with_state(runtime);
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    Ok(AdminServer {
        stop: Some(stop_tx),
        task: Some((cloud.clone(), task)),
    })
}

async fn health(State(rt): State<Arc<Runtime>>) -> Response {
    if rt.cluster.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if rt.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics(State(rt): State<Arc<Runtime>>) -> Response {
    let topics = rt.cluster.topics.list();
    let body = rt.cluster.metrics.render(|registry| {
        let t: Gauge = Gauge::default();
        t.set(topics.len() as i64);
        registry.register("topics", "topics, internal ones included", t);
        let p: Gauge = Gauge::default();
        p.set(topics.iter().map(|t| i64::from(t.partitions)).sum());
        registry.register("partitions", "partitions of all topics", p);
        if let Some(tier) = &rt.cluster.tier {
            tier.register_metrics(registry);
        }
    });
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
struct TopicView {
    name: String,
    id: String,
    partitions: i32,
    internal: bool,
    configs: Vec<ConfigView>,
}

#[derive(Serialize)]
struct ConfigView {
    name: &'static str,
    value: String,
    source: &'static str,
}

fn view(rt: &Runtime, meta: crate::topics::TopicMeta) -> TopicView {
    let configs = TOPIC_CONFIGS
        .iter()
        .filter_map(|def| {
            let (value, source) =
                TopicConfig::resolve(def.name, &meta.configs, &rt.cluster.config)?;
            Some(ConfigView {
                name: def.name,
                value,
                source: match source {
                    crate::config::ConfigSource::Topic => "topic",
                    crate::config::ConfigSource::StaticBroker => "broker",
                    crate::config::ConfigSource::Default => "default",
                },
            })
        })
        .collect();
    TopicView {
        name: meta.name,
        id: meta.id,
        partitions: meta.partitions,
        internal: meta.internal,
        configs,
    }
}

async fn topics(State(rt): State<Arc<Runtime>>) -> Response {
    let list: Vec<TopicView> = rt
        .cluster
        .topics
        .list()
        .into_iter()
        .map(|m| view(&rt, m))
        .collect();
    axum::Json(list).into_response()
}

async fn topic(State(rt): State<Arc<Runtime>>, Path(name): Path<String>) -> Response {
    match rt.cluster.topics.get(&name) {
        Some(meta) => axum::Json(view(&rt, meta)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": format!("topic {name} does not exist") })),
        )
            .into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct TierQuery {
    topic: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `GET /v1/tier/status[?topic=T]`: every open partition's offsets across
/// both tiers, upload progress and lag, and the cache hit ratio.
async fn tier_status(State(rt): State<Arc<Runtime>>, Query(q): Query<TierQuery>) -> Response {
    if let Some(topic) = &q.topic
        && rt.cluster.topics.get(topic).is_none()
    {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": format!("topic {topic} does not exist") })),
        )
            .into_response();
    }
    let mut partitions = Vec::new();
    for inbox in &rt.cluster.inboxes {
        let (tx, rx) = async_channel::bounded(1);
        let msg = crate::shard::ShardMsg::TierStatus {
            topic: q.topic.clone(),
            reply: tx,
        };
        if inbox.send(msg).await.is_ok()
            && let Ok(list) = rx.recv().await
        {
            partitions.extend(list);
        }
    }
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let tier = rt.cluster.tier.as_ref();
    axum::Json(serde_json::json!({
        "object_store": tier.map(|t| t.url()),
        "cache_hit_ratio": tier.map(|t| t.cache_hit_ratio()),
        "partitions": partitions,
    }))
    .into_response()
}

/// `GET /v1/iceberg/status[?topic=T]`: every projected topic's table,
/// commits, rows and per-partition projected offset and lag.
async fn iceberg_status(State(rt): State<Arc<Runtime>>, Query(q): Query<TierQuery>) -> Response {
    if let Some(topic) = &q.topic
        && rt.cluster.topics.get(topic).is_none()
    {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": format!("topic {topic} does not exist") })),
        )
            .into_response();
    }
    #[cfg(feature = "iceberg")]
    let topics = rt
        .projector
        .get()
        .map(|p| p.status(q.topic.as_deref()))
        .unwrap_or_default();
    #[cfg(not(feature = "iceberg"))]
    let topics: Vec<serde_json::Value> = Vec::new();
    axum::Json(serde_json::json!({
        "namespace": rt.cluster.config.iceberg_namespace,
        "topics": topics,
    }))
    .into_response()
}

/// `POST /v1/tier/recover?topic=T` or `?all=true`: recreates topics from
/// the object store, streaming one progress line at a time.
async fn tier_recover(State(rt): State<Arc<Runtime>>, Query(q): Query<TierQuery>) -> Response {
    let Some(tier) = rt.cluster.tier.clone() else {
        return (StatusCode::CONFLICT, "tiered storage is not running\n").into_response();
    };
    if q.topic.is_none() && !q.all {
        return (
            StatusCode::BAD_REQUEST,
            "name a topic (?topic=) or ask for ?all=true\n",
        )
            .into_response();
    }
    let (lines, body) = async_channel::unbounded::<String>();
    let cluster = rt.cluster.clone();
    tokio::spawn(async move {
        let say = |line: String| {
            let _ = lines.try_send(line + "\n");
        };
        say(format!("reading manifests from {}", tier.url()));
        let progress_lines = lines.clone();
        let plan = tier
            .recovery_plan(q.topic.clone(), move |line| {
                let _ = progress_lines.try_send(line + "\n");
            })
            .await;
        let plan = match plan {
            Ok(plan) if plan.is_empty() => {
                say(format!(
                    "ERROR: no topic.json for {} in the object store",
                    q.topic.as_deref().unwrap_or("any topic")
                ));
                return;
            }
            Ok(plan) => plan,
            Err(e) => {
                say(format!("ERROR: {e}"));
                return;
            }
        };
        let mut failed = 0;
        for topic in plan {
            let (tx, rx) = async_channel::bounded(1);
            let msg = crate::shard::ShardMsg::Recover {
                plan: topic,
                reply: tx,
            };
            let result = match cluster.inboxes[0].send(msg).await {
                Ok(()) => rx
                    .recv()
                    .await
                    .unwrap_or_else(|_| Err("the broker is stopping".into())),
                Err(_) => Err("the broker is stopping".into()),
            };
            match result {
                Ok(line) => say(line),
                Err(line) => {
                    failed += 1;
                    say(format!("ERROR: {line}"));
                }
            }
        }
        say(if failed == 0 {
            "done".to_string()
        } else {
            format!("ERROR: {failed} topic(s) not recovered")
        });
    });
    let stream = futures_util::StreamExt::map(body, Ok::<_, std::convert::Infallible>);
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

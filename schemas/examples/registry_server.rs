//! Serves the registry on a port with the in-memory log (nothing is kept
//! after exit): for trying clients against it by hand.
//!
//! `cargo run -p schemas --example registry_server -- 127.0.0.1:8081`

use std::sync::Arc;

use schemas::{MemoryLog, Registry};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let registry = Arc::new(Registry::new(Arc::new(MemoryLog::new())));
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("schema registry on http://{}", listener.local_addr()?);
        axum::serve(listener, schemas::http::router(registry)).await
    })
}

//! `--serve`: the HTTP server beside the dataflow (process 0), on its own tokio runtime
//! so that the workers never wait for a client.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{RunConfig, Serve};
use crate::error::Error;

/// Binds `serve.addr` and starts serving `serve.store`; returns the address bound (a
/// port 0 becomes the one picked). A busy or bad address is the caller's error.
pub(super) fn start(serve: &Serve, cfg: &RunConfig) -> Result<SocketAddr, Error> {
    let listener = std::net::TcpListener::bind(serve.addr)
        .map_err(|e| Error::Usage(format!("--serve {}: cannot listen: {e}", serve.addr)))?;
    let bound = listener.local_addr().map_err(|e| Error::Usage(format!("--serve {}: {e}", serve.addr)))?;
    listener.set_nonblocking(true).map_err(|e| Error::Usage(format!("--serve {}: {e}", serve.addr)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(serve.threads)
        .thread_name("shopflow:serve")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the server's runtime: {e}")))?;
    let api = serving::http::Api { store: serve.store.clone(), ad_refresh_ms: cfg.params.ads.refresh_ms };
    std::thread::Builder::new()
        .name("shopflow:serve".into())
        .spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, serving::http::router(api)).await {
                            eprintln!("shopflow: the server stopped: {e}");
                        }
                    }
                    Err(e) => eprintln!("shopflow: the server could not start: {e}"),
                }
            })
        })
        .map_err(|e| Error::Internal(format!("cannot start the server thread: {e}")))?;
    Ok(bound)
}

/// After the input ended: keeps serving the final state until a stop request.
pub(super) fn until_stopped(cfg: &RunConfig, bound: SocketAddr) {
    if !cfg.stop.load(Ordering::SeqCst) {
        eprintln!("shopflow: the run is complete; still serving http://{bound} (Ctrl-C to end)");
    }
    while !cfg.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! The operator surface over HTTP: `/health`, `/status`, `/metrics`, `/silences` and the
//! status page at `/`, served by one thread from the view the loop publishes after each tick.
//!
//! Invariants: the server never touches engine state (it reads an immutable [`view::View`]
//! from the [`view::Board`]); the loop never waits on a client (publishing swaps a pointer);
//! every request is read within fixed limits of size, time and connections (`server`).
//! Mutations (`POST /silences`, `DELETE /silences/{id}`) need the configured bearer token and
//! go through the same store and lock as `hostwatch silence`; a `run --dry-run` refuses them
//! (403): that store is the real daemon's.
//!
//! Not for: collecting, evaluating or delivering anything; a fleet's server side (Prometheus
//! and Alertmanager are that).

pub(crate) mod daily;
pub(crate) mod page;
pub(crate) mod prometheus;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod status;
pub(crate) mod view;

use crate::config::ApiConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A running API: the server thread and what its routes read.
#[derive(Debug)]
pub(crate) struct Api {
    server: server::ServerHandle,
    routes: Arc<routes::Routes>,
}

impl Api {
    /// Binds `config.listen` and starts serving `board`. A port that cannot be bound is an
    /// error (refused at start-up, never retried in the background). A `dry_run` serves
    /// every document but refuses every change (its silences store is the real daemon's).
    /// The page's 24-hour charts read `history` (the history file, `None` when it is off).
    pub(crate) fn start(
        config: &ApiConfig,
        board: Arc<view::Board>,
        state_dir: &Path,
        history: Option<PathBuf>,
        dry_run: bool,
    ) -> Result<Api, String> {
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| format!("api.listen {}: cannot listen: {e}", config.listen))?;
        let mut routes = routes::Routes::new(board, config.token.clone(), state_dir);
        routes.dry_run = dry_run;
        routes.daily.set_path(history);
        let routes = Arc::new(routes);
        let handler = {
            let routes = Arc::clone(&routes);
            Box::new(move |req: &server::Request| routes.handle(req))
        };
        let server = server::spawn(listener, server::Limits::default(), handler)
            .map_err(|e| format!("api: cannot start the server thread: {e}"))?;
        routes.set_server_stats(server.stats());
        log::info!(listen = server.addr().to_string().as_str(); "api listening");
        Ok(Api { server, routes })
    }

    /// Applies a reloaded config's token and history file (the daemon keeps the address: it
    /// changes only at a restart).
    pub(crate) fn reload(&self, config: &ApiConfig, history: Option<PathBuf>) {
        self.routes.set_token(config.token.clone());
        self.routes.daily.set_path(history);
    }

    /// Stops the server thread.
    pub(crate) fn stop(self) {
        self.server.stop();
    }
}

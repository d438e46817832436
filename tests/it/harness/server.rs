//! A server the harness runs in-process (the token issuer, the fake Harbor, the fault proxy): its own thread and
//! tokio runtime, so blocking tests can use it; stopped and joined when the [`ServerThread`] is dropped.

use std::future::Future;

/// A running server thread; dropping it stops the server and waits for the thread.
pub struct ServerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve(stop)` on a new thread named `name` with a runtime of `workers` threads (0: current-thread);
    /// `serve` must return once `stop` fires. Dropping the runtime cancels the connection tasks still running.
    pub fn spawn<F, Fut>(name: &str, workers: usize, serve: F) -> ServerThread
    where
        F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = match workers {
                    0 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
                    n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
                }
                .expect("server runtime");
                rt.block_on(serve(stop_rx));
            })
            .unwrap_or_else(|e| panic!("spawn {name} thread: {e}"));
        ServerThread { stop: Some(stop_tx), thread: Some(thread) }
    }

    /// Serves `app` on `listener` (already bound, so connections queue before the thread runs).
    pub fn axum(name: &str, workers: usize, listener: std::net::TcpListener, app: axum::Router) -> ServerThread {
        listener.set_nonblocking(true).expect("nonblocking listener");
        let what = name.to_string();
        ServerThread::spawn(name, workers, move |stop| async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            tokio::select! {
                r = axum::serve(listener, app) => r.unwrap_or_else(|e| panic!("{what}: {e}")),
                _ = stop => {}
            }
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! What the comparison binaries share: the hand-written minimal layers isoscope is measured
//! against (`floor`, and `floor_plus` for reference), drop-all transports, the loopback ingest
//! server, the storm's error and the filled scopes of the capture benches, and small helpers.

pub mod wrk;

/// The least this design can cost: one `Arc<Mutex<..>>` scope per request bound with a tokio
/// task-local for `call` and the response future, holding the request's method, URI and a
/// clone of its headers; the handler pushes a breadcrumb and sets a tag. No ids, no events.
pub mod floor {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use http::{HeaderMap, Method, Request, Uri};
    use tokio::task::futures::TaskLocalFuture;

    #[allow(dead_code)]
    pub struct Scope {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        breadcrumbs: Vec<String>,
        tags: BTreeMap<String, String>,
    }

    tokio::task_local! {
        static SCOPE: Arc<Mutex<Scope>>;
    }

    #[derive(Clone)]
    pub struct Layer;

    impl<S> tower::Layer<S> for Layer {
        type Service = Service<S>;
        fn layer(&self, inner: S) -> Service<S> {
            Service(inner)
        }
    }

    #[derive(Clone)]
    pub struct Service<S>(S);

    impl<S: tower::Service<Request<B>>, B> tower::Service<Request<B>> for Service<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = TaskLocalFuture<Arc<Mutex<Scope>>, S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, req: Request<B>) -> Self::Future {
            let scope = Arc::new(Mutex::new(Scope {
                method: req.method().clone(),
                uri: req.uri().clone(),
                headers: req.headers().clone(),
                breadcrumbs: Vec::new(),
                tags: BTreeMap::new(),
            }));
            let fut = SCOPE.sync_scope(scope.clone(), || self.0.call(req));
            SCOPE.scope(scope, fut)
        }
    }

    pub fn breadcrumb_and_tag() {
        let _ = SCOPE.try_with(|s| {
            let mut s = s.lock().unwrap();
            s.breadcrumbs.push("handled".to_owned());
            s.tags.insert("handler".to_owned(), "floor".to_owned());
        });
    }
}

/// The floor plus the two things the design requires of every request that the floor leaves
/// out (DESIGN.md): the response body is wrapped and binds the scope while it is polled and
/// dropped (hyper streams it after the future completed; axum then boxes the wrapped body), and
/// a breadcrumb carries the time it was recorded. Still no ids, outcome, panic capture or events.
/// For reference only: the targets are against `floor`.
pub mod floor_plus {
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{ready, Context, Poll};
    use std::time::SystemTime;

    use http::{HeaderMap, Method, Request, Response, Uri};
    use http_body::Frame;
    use pin_project_lite::pin_project;
    use tokio::task::futures::TaskLocalFuture;

    #[allow(dead_code)]
    pub struct Crumb {
        timestamp: SystemTime,
        message: String,
    }

    #[allow(dead_code)]
    pub struct Scope {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        breadcrumbs: Vec<Crumb>,
        tags: BTreeMap<String, String>,
    }

    type Shared = Arc<Mutex<Scope>>;

    tokio::task_local! {
        static SCOPE: Shared;
    }

    #[derive(Clone)]
    pub struct Layer;

    impl<S> tower::Layer<S> for Layer {
        type Service = Service<S>;
        fn layer(&self, inner: S) -> Service<S> {
            Service(inner)
        }
    }

    #[derive(Clone)]
    pub struct Service<S>(S);

    impl<S, B, R> tower::Service<Request<B>> for Service<S>
    where
        S: tower::Service<Request<B>, Response = Response<R>>,
    {
        type Response = Response<Body<R>>;
        type Error = S::Error;
        type Future = ResponseFuture<S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, req: Request<B>) -> Self::Future {
            let scope = Arc::new(Mutex::new(Scope {
                method: req.method().clone(),
                uri: req.uri().clone(),
                headers: req.headers().clone(),
                breadcrumbs: Vec::new(),
                tags: BTreeMap::new(),
            }));
            let fut = SCOPE.sync_scope(scope.clone(), || self.0.call(req));
            ResponseFuture { inner: SCOPE.scope(scope.clone(), fut), scope: Some(scope) }
        }
    }

    pin_project! {
        pub struct ResponseFuture<F> {
            #[pin]
            inner: TaskLocalFuture<Shared, F>,
            scope: Option<Shared>,
        }
    }

    impl<F, R, E> Future for ResponseFuture<F>
    where
        F: Future<Output = Result<Response<R>, E>>,
    {
        type Output = Result<Response<Body<R>>, E>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let result = ready!(this.inner.poll(cx));
            let scope = this.scope.take().expect("polled after completion");
            Poll::Ready(result.map(|res| res.map(|body| Body { inner: Some(body), scope })))
        }
    }

    pin_project! {
        pub struct Body<B> {
            #[pin]
            inner: Option<B>,
            scope: Shared,
        }

        impl<B> PinnedDrop for Body<B> {
            fn drop(this: Pin<&mut Self>) {
                let this = this.project();
                let mut inner = this.inner;
                if inner.is_some() {
                    SCOPE.sync_scope(this.scope.clone(), || inner.set(None));
                }
            }
        }
    }

    impl<B: http_body::Body> http_body::Body for Body<B> {
        type Data = B::Data;
        type Error = B::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            let this = self.project();
            let mut inner = this.inner;
            SCOPE.sync_scope(this.scope.clone(), || {
                let Some(body) = inner.as_mut().as_pin_mut() else { return Poll::Ready(None) };
                let polled = body.poll_frame(cx);
                if let Poll::Ready(None) = polled {
                    inner.set(None);
                }
                polled
            })
        }

        fn is_end_stream(&self) -> bool {
            self.inner.as_ref().is_none_or(http_body::Body::is_end_stream)
        }

        fn size_hint(&self) -> http_body::SizeHint {
            self.inner.as_ref().map_or_else(|| http_body::SizeHint::with_exact(0), http_body::Body::size_hint)
        }
    }

    pub fn breadcrumb_and_tag() {
        let _ = SCOPE.try_with(|s| {
            let crumb = Crumb { timestamp: SystemTime::now(), message: "handled".to_owned() };
            let mut s = s.lock().unwrap();
            s.breadcrumbs.push(crumb);
            s.tags.insert("handler".to_owned(), "floor".to_owned());
        });
    }
}

/// A transport that drops everything, for isoscope.
pub struct DropAll;

impl isoscope::Transport for DropAll {
    fn send(&self, envelope: isoscope::Envelope) {
        drop(envelope);
    }
}

/// A transport that drops everything, for sentry.
pub struct SentryDropAll;

impl sentry::Transport for SentryDropAll {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        drop(envelope);
    }
}

/// The value after `--name` on the command line, parsed.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|v| v.parse().ok())
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Peak resident memory (`VmHWM`, KiB) of a process, from its `/proc/<pid>/status` text.
pub fn peak_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A loopback ingest server on its own thread that answers every envelope `{}` and counts
/// them: its DSN and the count.
pub fn accept_all_ingest() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use axum::routing::post;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/api/{project}/envelope/",
                post(move |_body: axum::body::Bytes| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    async { "{}" }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://0123456789abcdef0123456789abcdef@{}/1", rx.recv().unwrap()), received)
}

/// The error of a storm: a database that is down (`orders database unavailable` ←
/// `connection refused`).
#[derive(Debug)]
pub struct Unavailable(std::io::Error);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("orders database unavailable")
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

pub fn unavailable() -> Unavailable {
    Unavailable(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"))
}

/// Fills an isoscope scope the way the capture benches do: `breadcrumbs` breadcrumbs
/// (`step {i}`, category `app`) and `tags` tags (`tag{i}` = `value {i}`).
pub fn fill_iso(scope: &isoscope::ScopeHandle, breadcrumbs: usize, tags: usize) {
    scope.configure(|s| {
        for i in 0..breadcrumbs {
            s.add_breadcrumb(isoscope::Breadcrumb::new(format!("step {i}")).category("app"));
        }
        for i in 0..tags {
            s.set_tag(format!("tag{i}"), format!("value {i}"));
        }
    });
}

/// The same for a sentry hub: a new hub from the main one, filled alike.
pub fn filled_sentry_hub(breadcrumbs: usize, tags: usize) -> std::sync::Arc<sentry::Hub> {
    let hub = std::sync::Arc::new(sentry::Hub::new_from_top(sentry::Hub::main()));
    sentry::Hub::run(hub.clone(), || {
        for i in 0..breadcrumbs {
            sentry::add_breadcrumb(sentry::Breadcrumb {
                message: Some(format!("step {i}")),
                category: Some("app".into()),
                ..Default::default()
            });
        }
        sentry::configure_scope(|s| {
            for i in 0..tags {
                s.set_tag(&format!("tag{i}"), format!("value {i}"));
            }
        });
    });
    hub
}

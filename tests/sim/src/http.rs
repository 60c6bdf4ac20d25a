//! HTTP plumbing over hyper 1 without hyper-util: a tokio IO adapter, the
//! accept loop, and a small JSON client for tests.

use crate::error::{Error, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// Adapts a tokio stream to hyper's IO traits.
pub struct Io<T>(pub T);

impl<T: AsyncRead + Unpin> hyper::rt::Read for Io<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut tmp = [0u8; 8192];
        let len = buf.remaining().min(tmp.len());
        let mut rb = tokio::io::ReadBuf::new(&mut tmp[..len]);
        match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(rb.filled());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for Io<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A request as the router sees it.
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query string (undecoded; `a=b&c=d`).
    pub query: String,
    /// The body.
    pub body: Bytes,
}

/// What the router answers: a status and a JSON body.
pub type Response = (u16, serde_json::Value);

/// Serves HTTP/1.1 on `listener` forever, one task per connection.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of file descriptors or similar: back off, keep serving.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move {
                    let (parts, body) = req.into_parts();
                    let resp = match body.collect().await {
                        Ok(b) => {
                            handler(Request {
                                method: parts.method.as_str().to_string(),
                                path: parts.uri.path().to_string(),
                                query: parts.uri.query().unwrap_or("").to_string(),
                                body: b.to_bytes(),
                            })
                            .await
                        }
                        Err(e) => (
                            400,
                            crate::error::ApiError::bad(format!("reading body: {e}")).body(),
                        ),
                    };
                    Ok::<_, std::convert::Infallible>(to_hyper(resp))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(Io(stream), svc)
                .await;
        });
    }
}

fn to_hyper((status, body): Response) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body.to_string() + "\n")));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A tiny JSON client for the simulator's API (one connection per call).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
}

impl Client {
    /// A client for `http://127.0.0.1:PORT`.
    pub fn new(base: impl Into<String>) -> Client {
        Client {
            base: base.into().trim_end_matches('/').to_string(),
        }
    }

    /// `GET path` → (status, JSON body).
    pub async fn get(&self, path: &str) -> Result<Response> {
        self.call("GET", path, None).await
    }

    /// `POST path` with a JSON body → (status, JSON body).
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Result<Response> {
        self.call("POST", path, Some(body)).await
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        let fail = |message: String| Error::Client {
            method: method.into(),
            url: url.clone(),
            message,
        };
        let authority = self
            .base
            .strip_prefix("http://")
            .ok_or_else(|| fail("only http:// URLs are supported".into()))?;
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| fail(format!("connect: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(Io(stream))
            .await
            .map_err(|e| fail(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))
            .map_err(|e| fail(format!("building request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(format!("send: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("reading body: {e}")))?
            .to_bytes();
        let value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| fail(format!("body is not JSON: {e}")))?
        };
        Ok((status, value))
    }
}

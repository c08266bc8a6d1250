//! Frames from the worker, each checked before it is applied (a frame
//! that breaks the protocol is an `Err`, which closes the worker), and the
//! body streams between the worker and the data plane, with credit; and
//! what the supervisor keeps of each request in flight ([`Pending`]).

use super::*;

/// A request on the worker: what every stage has, and the stage.
pub(super) struct Pending {
    pub(super) tenant: String,
    /// Past this the worker has held the request far longer than the
    /// tenant's wall limit allows: it is not doing its job.
    pub(super) deadline: Instant,
    /// The credit of a streamed request body (closed when the request ends).
    pub(super) req_credit: Option<Arc<Semaphore>>,
    pub(super) stage: Stage,
}

pub(super) enum Stage {
    /// Waiting for the head.
    Head {
        max_body: u64,
        reply: oneshot::Sender<Result<Reply, DispatchError>>,
        permit: Permit,
    },
    /// A whole body being collected.
    Full {
        _permit: Permit,
        reply: oneshot::Sender<Result<Reply, DispatchError>>,
        meta: ReplyMeta,
        status: u16,
        headers: Vec<(String, String)>,
        body: BytesMut,
        max_body: u64,
    },
    /// A streamed body being forwarded.
    Stream {
        tx: mpsc::UnboundedSender<Bytes>,
        queued: Arc<AtomicUsize>,
        fail: Option<oneshot::Sender<String>>,
    },
}

/// Stops a request's upload, if it has one.
fn close(req_credit: &Option<Arc<Semaphore>>) {
    if let Some(c) = req_credit {
        c.close();
    }
}

impl Pending {
    /// The request is over: its upload, if any, stops.
    fn finish(&self) {
        close(&self.req_credit);
    }

    /// Answers the request for a dead worker.
    pub(super) fn fail(self, cause: &str) {
        self.finish();
        match self.stage {
            Stage::Head { reply, .. } | Stage::Full { reply, .. } => {
                let _ = reply.send(Err(DispatchError::WorkerCrashed {
                    cause: cause.to_string(),
                }));
            }
            Stage::Stream { fail, .. } => {
                if let Some(f) = fail {
                    let _ = f.send(format!("the worker process died: {cause}"));
                }
            }
        }
    }
}

impl Link {
    /// Handles one frame from the worker; `Err` closes the worker.
    pub(super) fn on_frame(
        self: &Arc<Self>,
        f: Frame,
        env: &LinkEnv,
        scope: &str,
        cache_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<(), String> {
        match f.kind {
            Kind::Head => self.on_head(f),
            Kind::RespChunk | Kind::RespEnd | Kind::RespError => self.on_body(f),
            Kind::ReqCredit => {
                let n = f.credit_count().map_err(|e| e.to_string())?;
                if let Some(c) = lock(&self.state)
                    .pending
                    .get(&f.id)
                    .and_then(|p| p.req_credit.clone())
                {
                    if c.available_permits() + (n as usize) > 2 * WINDOW as usize {
                        return Err("request body credit past the window".into());
                    }
                    c.add_permits(n as usize);
                }
                Ok(())
            }
            Kind::Log => {
                let m: LogMsg = f.parse().map_err(|e| e.to_string())?;
                // Only a tenant this worker hosts may log, into its own ring.
                if lock(&self.state).tenants.contains(&m.tenant) {
                    env.logs.push(&m.tenant, m.level, &m.message);
                }
                Ok(())
            }
            Kind::Event => {
                match f.parse::<Event>().map_err(|e| e.to_string())? {
                    Event::Termination { tenant, cause } => {
                        let known = lock(&self.state).tenants.contains(&tenant);
                        let cause_ok = serde_json::from_value::<isola_core::LimitKind>(
                            serde_json::Value::String(cause.clone()),
                        )
                        .is_ok_and(|k| k.name() == cause);
                        if known && cause_ok {
                            env.metrics.termination(&tenant, &cause);
                        }
                    }
                    // Only about a tenant this worker hosts.
                    Event::Trust { tenant, earned } => {
                        if lock(&self.state).tenants.contains(&tenant) {
                            match earned {
                                Some((generation, version)) => {
                                    env.trust.record(&tenant, generation, version)
                                }
                                None => env.trust.distrust(&tenant),
                            }
                        }
                    }
                }
                Ok(())
            }
            Kind::Pong => {
                let p: Pong = f.parse().map_err(|e| e.to_string())?;
                *lock(&self.last_pong) = Instant::now();
                self.requests.store(p.requests, Ordering::Relaxed);
                if let Some((tenant, ms)) = p.stuck {
                    if ms > env.config.stuck_kill_after.as_millis() as u64
                        && lock(&self.state).tenants.contains(&tenant)
                    {
                        let hook = lock(&self.on_stuck).clone();
                        match hook {
                            Some(h) => h(self, &tenant, ms),
                            None => self.kill(Link::stuck_reason(&tenant, ms), vec![tenant]),
                        }
                    }
                }
                Ok(())
            }
            Kind::Validated => {
                let r: Result<(), String> = f.parse().map_err(|e| e.to_string())?;
                if let Some(tx) = lock(&self.state).validations.remove(&f.id) {
                    let _ = tx.send(r.map_err(|e| crate::logs::prefix(&e, 64 << 10).to_string()));
                }
                Ok(())
            }
            Kind::CacheGet => {
                let key = std::str::from_utf8(&f.payload)
                    .ok()
                    .and_then(CacheKey::from_hex)
                    .ok_or("cache lookup with a malformed key")?;
                let (out, id) = (self.out.clone(), f.id);
                match env.cache.clone() {
                    Some(store) => {
                        let key = key.scoped(scope);
                        let link = self.clone();
                        tokio::task::spawn_blocking(move || {
                            let _slot = cache_slot;
                            let data = store.get(&key).ok().flatten().unwrap_or_default();
                            let queued =
                                link.cache_backlog.fetch_add(data.len(), Ordering::Relaxed);
                            if queued + data.len() > MAX_CACHE_BACKLOG {
                                link.kill(
                                    format!(
                                        "the worker left {} MiB of code cache data unread",
                                        queued >> 20
                                    ),
                                    Vec::new(),
                                );
                                return;
                            }
                            let _ = out.send(Frame::new(Kind::CacheData, id, data));
                        });
                    }
                    None => {
                        let _ = out.send(Frame::new(Kind::CacheData, id, Bytes::new()));
                    }
                }
                Ok(())
            }
            Kind::CachePut => {
                let key = f
                    .payload
                    .get(..64)
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .and_then(CacheKey::from_hex)
                    .ok_or("cache entry with a malformed key")?;
                if let Some(store) = env.cache.clone() {
                    let key = key.scoped(scope);
                    let data = f.payload.slice(64..);
                    tokio::task::spawn_blocking(move || {
                        let _slot = cache_slot;
                        let r = if data.is_empty() {
                            store.remove(&key)
                        } else {
                            store.put(&key, &data)
                        };
                        if let Err(e) = r {
                            tracing::warn!("code cache entry from a worker not stored: {e}");
                        }
                    });
                }
                Ok(())
            }
            Kind::FetchStart => self.start_fetch(f, env),
            Kind::FetchCancel => {
                self.cancel_fetch(f.id);
                Ok(())
            }
            other => Err(format!("a worker may not send {other:?}")),
        }
    }

    fn on_head(self: &Arc<Self>, f: Frame) -> Result<(), String> {
        let ReplyHead { result, meta } = f.parse().map_err(|e| e.to_string())?;
        let mut s = lock(&self.state);
        let Some(p) = s.pending.remove(&f.id) else {
            return Err(format!(
                "a head for request {} that is not waiting for one",
                f.id
            ));
        };
        let Stage::Head {
            max_body,
            reply,
            permit,
        } = p.stage
        else {
            return Err(format!("a second head for request {}", f.id));
        };
        let stage = match result {
            Err(e) => {
                close(&p.req_credit);
                let _ = match e.into_error() {
                    Ok(err) => reply.send(Ok(reply_of(meta, Err(err), None))),
                    Err(refusal) => reply.send(Err(refusal)),
                };
                return Ok(());
            }
            Ok(WireOutput::Other(desc)) => {
                close(&p.req_credit);
                let out = Output::Json(serde_json::Value::String(desc));
                let _ = reply.send(Ok(reply_of(meta, Ok(out), None)));
                return Ok(());
            }
            Ok(WireOutput::Response {
                status,
                headers,
                streamed: false,
            }) => Stage::Full {
                _permit: permit,
                reply,
                meta,
                status,
                headers,
                body: BytesMut::new(),
                max_body,
            },
            Ok(WireOutput::Response {
                status,
                headers,
                streamed: true,
            }) => {
                let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
                let (body_tx, body_rx) = mpsc::channel(WINDOW as usize);
                let (fail_tx, fail_rx) = oneshot::channel::<String>();
                let queued = Arc::new(AtomicUsize::new(0));
                tokio::spawn(forward_stream(
                    rx,
                    fail_rx,
                    body_tx,
                    queued.clone(),
                    self.out.clone(),
                    f.id,
                    permit,
                ));
                let response = HttpResponse {
                    status,
                    headers,
                    body: Vec::new(),
                    streamed: true,
                };
                let out = Ok(Output::Response(response));
                let _ = reply.send(Ok(reply_of(meta, out, Some(body_rx))));
                Stage::Stream {
                    tx,
                    queued,
                    fail: Some(fail_tx),
                }
            }
        };
        s.pending.insert(f.id, Pending { stage, ..p });
        Ok(())
    }

    fn on_body(&self, f: Frame) -> Result<(), String> {
        let mut s = lock(&self.state);
        let Some(p) = s.pending.get_mut(&f.id) else {
            // A body of a request already answered (e.g. cancelled): ignored.
            return Ok(());
        };
        match (&mut p.stage, f.kind) {
            (Stage::Head { .. }, _) => {
                return Err(format!("body before head for request {}", f.id));
            }
            (Stage::Full { body, max_body, .. }, Kind::RespChunk) => {
                if (body.len() + f.payload.len()) as u64 > (*max_body).max(1 << 20) {
                    return Err(format!(
                        "response body past the tenant's limit of {max_body} bytes"
                    ));
                }
                body.extend_from_slice(&f.payload);
                // Credit in batches of half the window: a small body (one
                // chunk) costs no credit frame at all.
                let chunks = body.len().div_ceil(MAX_CHUNK);
                if chunks % (WINDOW as usize / 2) == 0 {
                    let _ = self
                        .out
                        .send(Frame::credit(Kind::RespCredit, f.id, WINDOW / 2));
                }
                return Ok(());
            }
            (Stage::Stream { tx, queued, .. }, Kind::RespChunk) => {
                if queued.fetch_add(1, Ordering::SeqCst) >= 2 * WINDOW as usize {
                    return Err("response chunks past the credit window".into());
                }
                let _ = tx.send(f.payload);
                return Ok(());
            }
            _ => {}
        }
        // The end of a body (RespEnd) or its failure (RespError): the
        // request is over.
        let Some(p) = s.pending.remove(&f.id) else {
            return Ok(());
        };
        p.finish();
        let failure = || String::from_utf8_lossy(&f.payload).into_owned();
        match p.stage {
            Stage::Full {
                reply,
                meta,
                status,
                headers,
                body,
                ..
            } => {
                let output = if f.kind == Kind::RespEnd {
                    Ok(Output::Response(HttpResponse {
                        status,
                        headers,
                        body: body.to_vec(),
                        streamed: false,
                    }))
                } else {
                    Err(Error::Internal(format!(
                        "the response body failed: {}",
                        failure()
                    )))
                };
                let _ = reply.send(Ok(reply_of(meta, output, None)));
            }
            Stage::Stream {
                fail: Some(fail), ..
            } if f.kind == Kind::RespError => {
                let _ = fail.send(failure());
            }
            // A stream that ended: dropping its sender ends the client's body.
            Stage::Stream { .. } | Stage::Head { .. } => {}
        }
        Ok(())
    }
}

/// The data plane's reply for a head's `meta` and what the handler gave.
fn reply_of(
    meta: ReplyMeta,
    output: Result<Output, Error>,
    body: Option<mpsc::Receiver<Result<Bytes, std::io::Error>>>,
) -> Reply {
    Reply {
        result: output.map(|output| Invoked {
            output,
            cpu: Duration::from_micros(meta.cpu_us),
            wall: Duration::from_micros(meta.wall_us),
            cold: meta.cold,
        }),
        cold: meta.cold,
        prewarmed: meta.prewarmed,
        cache: meta.cache,
        heap_bytes: meta.heap_bytes,
        body,
    }
}

/// Moves a streamed response from the worker to the client's body, one
/// credit per chunk the client's side took; the client going away cancels
/// the stream on the worker. Holds the tenant's permit until the end.
async fn forward_stream(
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    mut fail: oneshot::Receiver<String>,
    body: mpsc::Sender<Result<Bytes, std::io::Error>>,
    queued: Arc<AtomicUsize>,
    out: mpsc::UnboundedSender<Frame>,
    id: u64,
    _permit: Permit,
) {
    loop {
        tokio::select! {
            biased;
            chunk = rx.recv() => match chunk {
                Some(c) => {
                    queued.fetch_sub(1, Ordering::SeqCst);
                    if body.send(Ok(c)).await.is_err() {
                        let _ = out.send(Frame::new(Kind::Cancel, id, Bytes::new()));
                        return;
                    }
                    let _ = out.send(Frame::credit(Kind::RespCredit, id, 1));
                }
                None => {
                    // The stream ended (or failed: say so to the client).
                    if let Ok(msg) = fail.try_recv() {
                        let _ = body.send(Err(std::io::Error::other(msg))).await;
                    }
                    return;
                }
            },
            msg = &mut fail => {
                if let Ok(msg) = msg {
                    let _ = body.send(Err(std::io::Error::other(msg))).await;
                }
                return;
            }
        }
    }
}

/// Sends a streamed request body to the worker as credit allows.
pub(super) async fn pump_request_body(
    mut source: Box<dyn BodySource>,
    credit: Arc<Semaphore>,
    out: mpsc::UnboundedSender<Frame>,
    id: u64,
) {
    loop {
        match source.poll() {
            BodyPoll::Chunk(c) => {
                let mut rest = Bytes::from(c);
                while !rest.is_empty() {
                    let Ok(p) = credit.acquire().await else {
                        return;
                    };
                    p.forget();
                    let n = rest.len().min(MAX_CHUNK);
                    if out
                        .send(Frame::new(Kind::ReqChunk, id, rest.split_to(n)))
                        .is_err()
                    {
                        return;
                    }
                }
            }
            BodyPoll::Pending => tokio::time::sleep(Duration::from_millis(1)).await,
            BodyPoll::End => {
                let _ = out.send(Frame::new(Kind::ReqEnd, id, Bytes::new()));
                return;
            }
            BodyPoll::Error(e) => {
                let _ = out.send(Frame::new(Kind::ReqError, id, e.into_bytes()));
                return;
            }
        }
        if credit.is_closed() {
            return;
        }
    }
}

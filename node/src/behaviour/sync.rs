//! The behaviour's side of synchronization: sending a session's requests
//! to authenticated neighbours, answering theirs (reconciliation from the
//! session's index, fetches from the storage reader), and turning fetched
//! records into session input once the verify pool has checked them.

use libp2p::{
    PeerId,
    request_response::{self, Message, OutboundFailure},
};
use peergroup_protocol::{
    Error, PeerName, SignedProperties,
    session::{Input, SyncRequest},
};
use serde_bytes::ByteBuf;

use crate::{
    behaviour::Behaviour,
    pipeline::VerifyFor,
    storage::{FetchRead, RawRecords, StorageError},
    sync::{
        MAX_FETCH_BYTES, Request, Response,
        requests::{FetchAssembly, Kind, Outbound, Serving},
    },
    verify::CHUNK,
};

impl Behaviour {
    /// Sends `peer` a synchronization request for `group` on behalf of its
    /// session.
    pub(crate) fn request_sync(
        &mut self,
        group: &PeerName,
        peer: PeerId,
        tag: u64,
        request: SyncRequest,
    ) {
        if !self.groups.is_neighbor(group, &peer) {
            // The session asks only neighbours, which are authenticated; one
            // whose credential lapsed since is asked nothing.
            self.handle(
                group,
                Input::SyncFailed {
                    peer,
                    tag,
                    reason: "not an authenticated member".into(),
                    timed_out: false,
                },
            );
            return;
        }
        let message = match request {
            SyncRequest::Reconcile(queries) => Request::Reconcile {
                group: group.clone(),
                queries,
            },
            SyncRequest::Fetch { ids, max_bytes } => Request::Fetch {
                group: group.clone(),
                ids,
                max_bytes: max_bytes.min(MAX_FETCH_BYTES),
            },
        };
        let kind = match message {
            Request::Fetch { .. } => Kind::Fetch,
            Request::Reconcile { .. } => Kind::Reconcile,
        };
        let id = self.inner.sync.send_request(&peer, message);
        self.sync.sent(
            id,
            Outbound {
                group: group.clone(),
                peer,
                tag,
                kind,
            },
        );
    }

    pub(crate) fn on_sync_event(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => self.serve(peer, request, channel),
                Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(request) = self.sync.answered(&request_id) {
                        self.on_response(request, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(Outbound {
                    group, peer, tag, ..
                }) = self.sync.answered(&request_id)
                {
                    let timed_out = matches!(error, OutboundFailure::Timeout);
                    self.handle(
                        &group,
                        Input::SyncFailed {
                            peer,
                            tag,
                            reason: error.to_string(),
                            timed_out,
                        },
                    );
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Serves a member: reconciliation answers come from the session's
    /// index at once; fetches are read on the storage reader.
    fn serve(
        &mut self,
        peer: PeerId,
        request: Request,
        channel: request_response::ResponseChannel<Response>,
    ) {
        let group = match &request {
            Request::Reconcile { group, .. } | Request::Fetch { group, .. } => group.clone(),
        };
        let member = self.groups.is_neighbor(&group, &peer);
        let now = self.now();
        let checked = self.groups.get(&group).and_then(|session| {
            session.check_ready()?;
            if !member {
                return Err(Error::NotAuthorized(
                    "not an authenticated member of the group on this connection".into(),
                ));
            }
            Ok(())
        });
        if let Err(e) = checked {
            tracing::debug!(%peer, %group, error = %e, "sync request refused");
            self.refuse(channel, e.name().into());
            return;
        }
        match request {
            Request::Reconcile { queries, .. } => {
                let answers = self.groups.get(&group).and_then(|session| {
                    let answers = session.answer_reconcile(&queries, now)?;
                    Ok((session.state().properties.as_bytes().to_vec(), answers))
                });
                match answers {
                    Ok((properties, answers)) => {
                        let response = Response::Reconciled {
                            properties: ByteBuf::from(properties),
                            answers,
                        };
                        if self.inner.sync.send_response(channel, response).is_err() {
                            tracing::debug!("sync answer not sent: the requester is gone");
                        }
                    }
                    Err(e) => self.refuse(channel, e.name().into()),
                }
            }
            Request::Fetch { ids, max_bytes, .. } => {
                if ids.len() > peergroup_protocol::session::FETCH_IDS {
                    self.refuse(channel, "too many ids".into());
                    return;
                }
                let properties = match self.groups.get(&group) {
                    Ok(session) => session.state().properties.as_bytes().to_vec(),
                    Err(e) => {
                        self.refuse(channel, e.name().into());
                        return;
                    }
                };
                // What the session announced must be served: the read
                // runs after every write queued so far (this round's merges
                // included) is committed. Writes still waiting for room in
                // the storage queue cannot be waited for that way: busy.
                self.work.flush_merges();
                if !self.sync.can_serve() || self.work.writes_waiting() {
                    self.stats.refused_busy = self.stats.refused_busy.saturating_add(1);
                    self.refuse(channel, "busy: try again later".into());
                    return;
                }
                let read = FetchRead {
                    group,
                    ids,
                    max_bytes: max_bytes.min(MAX_FETCH_BYTES) as usize,
                };
                match self.work.read(read) {
                    Some(tag) => self.sync.serve(
                        tag,
                        Serving {
                            channel,
                            properties,
                        },
                    ),
                    None => {
                        self.stats.refused_busy = self.stats.refused_busy.saturating_add(1);
                        self.refuse(channel, "busy: try again later".into());
                    }
                }
            }
        }
    }

    fn refuse(&mut self, channel: request_response::ResponseChannel<Response>, reason: String) {
        if self
            .inner
            .sync
            .send_response(channel, Response::Refused { reason })
            .is_err()
        {
            tracing::debug!("sync refusal not sent: the requester is gone");
        }
    }

    /// Envelopes read for a fetch being served.
    pub(crate) fn on_fetch_read(&mut self, tag: u64, result: Result<RawRecords, StorageError>) {
        let Some(Serving {
            channel,
            properties,
        }) = self.sync.served(tag)
        else {
            return;
        };
        let response = match result {
            Ok(read) => Response::Records {
                properties: ByteBuf::from(properties),
                records: read.envelopes.into_iter().map(ByteBuf::from).collect(),
                considered: u32::try_from(read.considered).unwrap_or(u32::MAX),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot read records to serve");
                Response::Refused {
                    reason: "the server's store failed".into(),
                }
            }
        };
        if self.inner.sync.send_response(channel, response).is_err() {
            tracing::debug!("sync response not sent: the requester is gone");
        }
    }

    /// A response to one of our requests: reconciliation answers go to the
    /// session; fetched records to the verify pool in chunks first.
    fn on_response(&mut self, request: Outbound, response: Response) {
        let Outbound {
            ref group,
            peer,
            tag,
            kind,
        } = request;
        let group = group.clone();
        if !self.groups.is_neighbor(&group, &peer) {
            // Its authentication ended (expired, failed) while the answer
            // was on its way: nothing it sends counts.
            self.handle(
                &group,
                Input::SyncFailed {
                    peer,
                    tag,
                    reason: "no longer an authenticated member".into(),
                    timed_out: false,
                },
            );
            return;
        }
        let (properties, records, considered) = match (response, kind) {
            (
                Response::Reconciled {
                    properties,
                    answers,
                },
                Kind::Reconcile,
            ) => {
                let properties = Some(SignedProperties::from_bytes(&properties));
                self.handle(
                    &group,
                    Input::Reconciled {
                        peer,
                        tag,
                        properties,
                        answers,
                    },
                );
                return;
            }
            (
                Response::Records {
                    properties,
                    records,
                    considered,
                },
                Kind::Fetch,
            ) => (properties, records, considered),
            (Response::Reconciled { .. } | Response::Records { .. }, _) => {
                tracing::debug!(%peer, %group, "a synchronization answer of the wrong kind");
                self.handle(
                    &group,
                    Input::SyncFailed {
                        peer,
                        tag,
                        reason: "an answer of the wrong kind".into(),
                        timed_out: false,
                    },
                );
                return;
            }
            (Response::Refused { reason }, _) => {
                tracing::debug!(%peer, %group, %reason, "sync refused");
                self.handle(
                    &group,
                    Input::SyncFailed {
                        peer,
                        tag,
                        reason,
                        timed_out: false,
                    },
                );
                return;
            }
        };
        let properties = Some(SignedProperties::from_bytes(&properties));
        let envelopes: Vec<Vec<u8>> = records.into_iter().map(ByteBuf::into_vec).collect();
        let chunks: Vec<Vec<Vec<u8>>> = envelopes.chunks(CHUNK).map(<[_]>::to_vec).collect();
        let assembly = FetchAssembly::new(&request, properties, chunks.len(), considered as usize);
        if chunks.is_empty() {
            let (group, fetched) = assembly.into_fetched();
            self.handle(&group, Input::Fetched(fetched));
            return;
        }
        let fetch = self.sync.assemble(assembly);
        for (index, chunk) in chunks.into_iter().enumerate() {
            self.work
                .queue_verify(chunk, VerifyFor::Fetch { fetch, index });
        }
    }
}

//! The behaviour's side of the first-connect copy: asking authenticated
//! neighbours for pages, serving them to authenticated members from the storage reader, and turning
//! received pages into session input once the verify pool has checked every
//! envelope.

use libp2p::{
    PeerId,
    request_response::{self, Message},
};
use peergroup_protocol::{
    Error, PeerName, SignedProperties, SignedRecord,
    session::{Input, Page, PageRequest},
};
use serde_bytes::ByteBuf;

use crate::{
    behaviour::{Behaviour, MAX_SERVING, PageAssembly, Serving, VerifyFor},
    storage::{PageRead, RawPage, Rejected, StorageError},
    sync::{PAGE_BYTES, PAGE_RECORDS, Request, Response},
    verify::CHUNK,
};

impl Behaviour {
    /// Sends `peer` a page request for `group` on behalf of its session.
    pub(crate) fn request_page(&mut self, group: &PeerName, peer: PeerId, request: PageRequest) {
        if !self.auth.is_member(group, &peer) {
            // The session asks only neighbours, which are authenticated; one
            // whose credential lapsed since is asked nothing.
            self.handle(
                group,
                Input::PageFailed {
                    peer,
                    reason: "not an authenticated member".into(),
                },
            );
            return;
        }
        let message = Request {
            group: group.clone(),
            record_type: request.record_type,
            after: request.after,
        };
        let id = self.inner.sync.send_request(&peer, message);
        self.requests.insert(id, (group.clone(), peer));
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
                    if let Some((group, peer)) = self.requests.remove(&request_id) {
                        self.on_response(group, peer, response);
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
                if let Some((group, peer)) = self.requests.remove(&request_id) {
                    self.handle(
                        &group,
                        Input::PageFailed {
                            peer,
                            reason: error.to_string(),
                        },
                    );
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Serves a page to a member: checks the group and the requester's
    /// proof, then reads the page on the storage reader.
    fn serve(
        &mut self,
        peer: PeerId,
        request: Request,
        channel: request_response::ResponseChannel<Response>,
    ) {
        let member = self.auth.is_member(&request.group, &peer);
        let checked = self.groups.get(&request.group).and_then(|session| {
            session.check_ready()?;
            if !member {
                return Err(Error::NotAuthorized(
                    "not an authenticated member of the group on this connection".into(),
                ));
            }
            Ok(session.state().properties.as_bytes().to_vec())
        });
        let properties = match checked {
            Ok(properties) => properties,
            Err(e) => {
                tracing::debug!(%peer, group = %request.group, error = %e, "sync request refused");
                self.refuse(channel, e.to_string());
                return;
            }
        };
        if self.serving.len() >= MAX_SERVING {
            self.stats.refused_busy = self.stats.refused_busy.saturating_add(1);
            self.refuse(channel, "busy: try again later".into());
            return;
        }
        let read = PageRead {
            group: request.group,
            record_type: request.record_type,
            after: request.after,
            limit: PAGE_RECORDS,
            max_bytes: PAGE_BYTES,
        };
        match self.storage.read(read) {
            Ok(tag) => {
                self.serving.insert(
                    tag,
                    Serving {
                        channel,
                        properties,
                    },
                );
            }
            Err(Rejected::Full(_) | Rejected::Closed(_)) => {
                self.stats.refused_busy = self.stats.refused_busy.saturating_add(1);
                self.refuse(channel, "busy: try again later".into());
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

    /// A page read for a request being served.
    pub(crate) fn on_page_read(&mut self, tag: u64, result: Result<RawPage, StorageError>) {
        let Some(Serving {
            channel,
            properties,
        }) = self.serving.remove(&tag)
        else {
            return;
        };
        let response = match result {
            Ok(page) => Response::Page {
                properties: ByteBuf::from(properties),
                records: page.envelopes.into_iter().map(ByteBuf::from).collect(),
                last: page.last,
                done: page.done,
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot read a page to serve");
                Response::Refused {
                    reason: "the server's store failed".into(),
                }
            }
        };
        if self.inner.sync.send_response(channel, response).is_err() {
            tracing::debug!("sync response not sent: the requester is gone");
        }
    }

    /// A response to one of our requests: a page goes to the verify pool in
    /// chunks; a refusal ends this copy attempt.
    fn on_response(&mut self, group: PeerName, peer: PeerId, response: Response) {
        if !self.auth.is_member(&group, &peer) {
            // Its authentication ended (expired, failed) while the page was
            // on its way: nothing it sends counts.
            self.handle(
                &group,
                Input::PageFailed {
                    peer,
                    reason: "no longer an authenticated member".into(),
                },
            );
            return;
        }
        let (properties, records, last, done) = match response {
            Response::Page {
                properties,
                records,
                last,
                done,
            } => (properties, records, last, done),
            Response::Refused { reason } => {
                tracing::debug!(%peer, %group, %reason, "sync refused");
                self.handle(&group, Input::PageFailed { peer, reason });
                return;
            }
        };
        let properties = Some(SignedProperties::from_bytes(&properties));
        let envelopes: Vec<Vec<u8>> = records.into_iter().map(ByteBuf::into_vec).collect();
        let chunks: Vec<Vec<Vec<u8>>> = envelopes.chunks(CHUNK).map(<[_]>::to_vec).collect();
        self.next_page = self.next_page.wrapping_add(1);
        let page = self.next_page;
        let assembly = PageAssembly {
            group: group.clone(),
            peer,
            properties,
            chunks: vec![None; chunks.len()],
            last,
            done,
        };
        if chunks.is_empty() {
            self.page_verified(assembly);
            return;
        }
        self.pages.insert(page, assembly);
        for (index, chunk) in chunks.into_iter().enumerate() {
            self.queue_verify(chunk, VerifyFor::Page { page, index });
        }
    }

    /// One verified chunk of a page; the page goes to its session once all are in.
    pub(crate) fn on_page_chunk(
        &mut self,
        page: u64,
        index: usize,
        results: Vec<Result<SignedRecord, Error>>,
    ) {
        let Some(assembly) = self.pages.get_mut(&page) else {
            return;
        };
        if let Some(slot) = assembly.chunks.get_mut(index) {
            *slot = Some(results);
        }
        if assembly.chunks.iter().any(Option::is_none) {
            return;
        }
        if let Some(assembly) = self.pages.remove(&page) {
            self.page_verified(assembly);
        }
    }

    fn page_verified(&mut self, assembly: PageAssembly) {
        let records = assembly.chunks.into_iter().flatten().flatten().collect();
        self.handle(
            &assembly.group,
            Input::Page(Page {
                peer: assembly.peer,
                properties: assembly.properties,
                records,
                last: assembly.last,
                done: assembly.done,
            }),
        );
    }
}

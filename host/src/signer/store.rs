//! The signing service's state in SQLite: requests, their approvals, their status, the
//! signed envelope, and an append-only audit log in which each entry carries the hash of
//! the one before. Every change is one transaction with its audit entry.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::approval::{Approval, Decision, SigningRequest};

/// A request's status: pending → approved → signed, or rejected / expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for approvals.
    Pending,
    /// The quorum is reached; signing.
    Approved,
    /// Signed: the envelope is stored.
    Signed,
    /// An approver rejected it.
    Rejected,
    /// Its lifetime ended before the quorum.
    Expired,
}

impl Status {
    /// Every status, in order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Signed,
        Self::Rejected,
        Self::Expired,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Signed => "signed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .with_context(|| format!("unknown request status {text:?} in the database"))
    }
}

/// A stored request.
#[derive(Clone, Debug)]
pub struct Row {
    /// The request as approvers sign it.
    pub request: SigningRequest,
    /// Its bytes, exactly as approved.
    pub bytes: Vec<u8>,
    /// Status.
    pub status: Status,
    /// The signed envelope (once signed).
    pub envelope: Option<Vec<u8>>,
    /// Why it was rejected or expired.
    pub reason: Option<String>,
}

/// A stored approval (or rejection).
#[derive(Clone, Debug)]
pub struct StoredApproval {
    /// What the check found.
    pub approval: Approval,
    /// The approval envelope's media type.
    pub media_type: String,
    /// The approval envelope.
    pub envelope: Vec<u8>,
}

/// What adding an approval did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Recorded.
    New,
    /// This approver had already decided; nothing changed.
    Duplicate,
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditEntry {
    /// Position, from 1.
    pub seq: i64,
    /// UNIX seconds.
    pub at: i64,
    /// `requested`, `approved-by`, `rejected-by`, `approved`, `signed`, `rejected`, `expired`,
    /// `started`.
    pub event: String,
    /// The request id (empty for service events).
    pub request: String,
    /// Who caused it (a TLS client or approver subject, or `service`).
    pub actor: String,
    /// Event details.
    pub detail: String,
    /// The previous entry's hash (64 zeros for the first).
    pub prev: String,
    /// SHA-256 over this entry's fields and `prev`, hex.
    pub hash: String,
}

impl AuditEntry {
    /// The hash this entry must have.
    pub fn expected_hash(&self) -> String {
        let fields = serde_json::json!([
            self.prev,
            self.seq,
            self.at,
            self.event,
            self.request,
            self.actor,
            self.detail
        ]);
        hex(&sha2::Sha256::digest(fields.to_string().as_bytes()))
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Check an audit log: consecutive sequence numbers from 1, each entry's hash right and
/// chained to the one before. Returns the number of entries and the last hash (to anchor
/// elsewhere: a log cut short at its end is only detected against an anchored head).
pub fn verify_audit(entries: &[AuditEntry]) -> Result<(usize, String)> {
    let mut prev = GENESIS.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        let position = i as i64 + 1;
        if entry.seq != position {
            bail!(
                "audit entry {position}: sequence number {} (an entry was removed or reordered)",
                entry.seq
            );
        }
        if entry.prev != prev {
            bail!(
                "audit entry {position} ({} {}): its previous hash does not match entry {}",
                entry.event,
                entry.request,
                position - 1
            );
        }
        if entry.hash != entry.expected_hash() {
            bail!(
                "audit entry {position} ({} {}): its content does not match its hash (the entry was changed)",
                entry.event,
                entry.request
            );
        }
        prev = entry.hash.clone();
    }
    Ok((entries.len(), prev))
}

/// The database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Open (or create) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the signer database {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS requests (
                 id TEXT PRIMARY KEY,
                 body BLOB NOT NULL,
                 status TEXT NOT NULL,
                 expires INTEGER NOT NULL,
                 envelope BLOB,
                 reason TEXT
             );
             CREATE TABLE IF NOT EXISTS approvals (
                 request TEXT NOT NULL REFERENCES requests(id),
                 approver TEXT NOT NULL,
                 certificate TEXT NOT NULL,
                 decision TEXT NOT NULL,
                 signed_at INTEGER NOT NULL,
                 media_type TEXT NOT NULL,
                 envelope BLOB NOT NULL,
                 PRIMARY KEY (request, approver)
             );
             CREATE TABLE IF NOT EXISTS seen_envelopes (digest TEXT PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS audit (
                 seq INTEGER PRIMARY KEY,
                 at INTEGER NOT NULL,
                 event TEXT NOT NULL,
                 request TEXT NOT NULL,
                 actor TEXT NOT NULL,
                 detail TEXT NOT NULL,
                 prev TEXT NOT NULL,
                 hash TEXT NOT NULL
             );",
        )
        .with_context(|| format!("initializing the signer database {}", path.display()))?;
        Ok(Self { conn })
    }

    /// Record a service event (start) in the audit log.
    pub fn note(&mut self, event: &str, detail: &str, now: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        audit(&tx, now, event, "", "service", detail)?;
        tx.commit()?;
        Ok(())
    }

    /// Store a new request.
    pub fn insert(&mut self, request: &SigningRequest, now: i64) -> Result<()> {
        let bytes = request.to_bytes();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO requests (id, body, status, expires) VALUES (?1, ?2, 'pending', ?3)",
            params![request.id, bytes, request.expires],
        )?;
        audit(
            &tx,
            now,
            "requested",
            &request.id,
            &request.requester,
            &format!(
                "key {} subject {} format {}",
                request.key, request.subject.digest, request.format
            ),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A request by id.
    pub fn get(&self, id: &str) -> Result<Option<Row>> {
        self.conn
            .query_row(
                "SELECT body, status, envelope, reason FROM requests WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()?
            .map(row)
            .transpose()
    }

    /// Requests, oldest first, optionally of one status.
    pub fn list(&self, status: Option<Status>) -> Result<Vec<Row>> {
        let mut statement = self.conn.prepare(
            "SELECT body, status, envelope, reason FROM requests
             WHERE ?1 IS NULL OR status = ?1 ORDER BY rowid",
        )?;
        let rows = statement.query_map(params![status.map(Status::as_str)], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        rows.map(|r| row(r?)).collect()
    }

    /// Requests per status.
    pub fn counts(&self) -> Result<Vec<(Status, i64)>> {
        let mut out = Vec::new();
        for status in Status::ALL {
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM requests WHERE status = ?1",
                params![status.as_str()],
                |r| r.get(0),
            )?;
            out.push((status, n));
        }
        Ok(out)
    }

    /// The approvals and rejections of a request.
    pub fn approvals(&self, id: &str) -> Result<Vec<StoredApproval>> {
        let mut statement = self.conn.prepare(
            "SELECT approver, certificate, decision, signed_at, media_type, envelope
             FROM approvals WHERE request = ?1 ORDER BY rowid",
        )?;
        let rows = statement.query_map(params![id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Vec<u8>>(5)?,
            ))
        })?;
        rows.map(|r| {
            let (approver, certificate, decision, signed_at, media_type, envelope) = r?;
            let decision = match decision.as_str() {
                "approve" => Decision::Approve,
                "reject" => Decision::Reject,
                other => bail!("unknown decision {other:?} in the database"),
            };
            Ok(StoredApproval {
                approval: Approval {
                    approver,
                    certificate,
                    decision,
                    signed_at,
                },
                media_type,
                envelope,
            })
        })
        .collect()
    }

    /// Whether these approval envelope bytes were ever submitted (to any request).
    pub fn seen(&self, envelope: &[u8]) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM seen_envelopes WHERE digest = ?1",
                params![crate::oci::sha256_digest(envelope)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Record a checked approval or rejection of a pending request; a rejection rejects
    /// the request. The envelope is remembered so that it is never accepted again.
    pub fn add_decision(
        &mut self,
        id: &str,
        approval: &Approval,
        media_type: &str,
        envelope: &[u8],
        now: i64,
    ) -> Result<Added> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO seen_envelopes (digest) VALUES (?1)",
            params![crate::oci::sha256_digest(envelope)],
        )?;
        let status: String = tx.query_row(
            "SELECT status FROM requests WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        if status != "pending" {
            bail!("request {id} is {status}, not pending");
        }
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO approvals
             (request, approver, certificate, decision, signed_at, media_type, envelope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                approval.approver,
                approval.certificate,
                approval.decision.as_str(),
                approval.signed_at,
                media_type,
                envelope
            ],
        )?;
        if inserted == 0 {
            tx.commit()?;
            return Ok(Added::Duplicate);
        }
        let event = match approval.decision {
            Decision::Approve => "approved-by",
            Decision::Reject => "rejected-by",
        };
        audit(
            &tx,
            now,
            event,
            id,
            &approval.approver,
            &format!("certificate {}", approval.certificate),
        )?;
        if approval.decision == Decision::Reject {
            tx.execute(
                "UPDATE requests SET status = 'rejected', reason = ?2 WHERE id = ?1",
                params![id, format!("rejected by {}", approval.approver)],
            )?;
            audit(&tx, now, "rejected", id, &approval.approver, "")?;
        }
        tx.commit()?;
        Ok(Added::New)
    }

    /// Move a request from `from` to `to` (with a reason); false if it was not `from`.
    pub fn transition(
        &mut self,
        id: &str,
        from: Status,
        to: Status,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE requests SET status = ?3, reason = ?4 WHERE id = ?1 AND status = ?2",
            params![id, from.as_str(), to.as_str(), reason],
        )?;
        if changed == 1 {
            audit(
                &tx,
                now,
                to.as_str(),
                id,
                "service",
                reason.unwrap_or_default(),
            )?;
        }
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Store the signed envelope of an approved request, once: false if it already has
    /// one or is not approved (nothing changes then).
    pub fn store_signature(
        &mut self,
        id: &str,
        envelope: &[u8],
        detail: &str,
        now: i64,
    ) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE requests SET status = 'signed', envelope = ?2
             WHERE id = ?1 AND status = 'approved' AND envelope IS NULL",
            params![id, envelope],
        )?;
        if changed == 1 {
            audit(&tx, now, "signed", id, "service", detail)?;
        }
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Expire pending requests whose lifetime ended; returns their ids.
    pub fn expire(&mut self, now: i64) -> Result<Vec<String>> {
        let ids: Vec<String> = {
            let mut statement = self
                .conn
                .prepare("SELECT id FROM requests WHERE status = 'pending' AND expires <= ?1")?;
            statement
                .query_map(params![now], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        for id in &ids {
            self.transition(
                id,
                Status::Pending,
                Status::Expired,
                Some("the request lifetime ended before enough approvals"),
                now,
            )?;
        }
        Ok(ids)
    }

    /// The whole audit log, in order.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        let mut statement = self.conn.prepare(
            "SELECT seq, at, event, request, actor, detail, prev, hash FROM audit ORDER BY seq",
        )?;
        let rows = statement.query_map([], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                event: r.get(2)?,
                request: r.get(3)?,
                actor: r.get(4)?,
                detail: r.get(5)?,
                prev: r.get(6)?,
                hash: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn row(
    (body, status, envelope, reason): (Vec<u8>, String, Option<Vec<u8>>, Option<String>),
) -> Result<Row> {
    Ok(Row {
        request: SigningRequest::from_bytes(&body)?,
        bytes: body,
        status: Status::parse(&status)?,
        envelope,
        reason,
    })
}

/// Append an audit entry inside `tx`, chained to the last one.
fn audit(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    event: &str,
    request: &str,
    actor: &str,
    detail: &str,
) -> Result<()> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = last.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h));
    let mut entry = AuditEntry {
        seq,
        at: now,
        event: event.to_owned(),
        request: request.to_owned(),
        actor: actor.to_owned(),
        detail: detail.to_owned(),
        prev,
        hash: String::new(),
    };
    entry.hash = entry.expected_hash();
    tx.execute(
        "INSERT INTO audit (seq, at, event, request, actor, detail, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            entry.seq,
            entry.at,
            entry.event,
            entry.request,
            entry.actor,
            entry.detail,
            entry.prev,
            entry.hash
        ],
    )?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::approval::Subject;

    fn request(id: &str) -> SigningRequest {
        SigningRequest {
            version: "1".into(),
            id: id.into(),
            key: "release".into(),
            subject: Subject {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: "sha256:00".into(),
                size: 1,
            },
            metadata: Default::default(),
            format: "jws".into(),
            signature_expiry_seconds: 0,
            requester: "CN=ci".into(),
            created: 10,
            expires: 100,
            nonce: "ff".into(),
        }
    }

    fn approval(approver: &str, decision: Decision) -> Approval {
        Approval {
            approver: approver.into(),
            certificate: "c".into(),
            decision,
            signed_at: 11,
        }
    }

    #[test]
    fn a_request_moves_pending_approved_signed_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path).unwrap();
        store.insert(&request("r1"), 10).unwrap();
        let a = approval("CN=alice", Decision::Approve);
        assert_eq!(
            store.add_decision("r1", &a, "m", b"e1", 11).unwrap(),
            Added::New
        );
        assert_eq!(
            store.add_decision("r1", &a, "m", b"e2", 12).unwrap(),
            Added::Duplicate
        );
        assert!(store.seen(b"e1").unwrap());
        drop(store);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.get("r1").unwrap().unwrap().status, Status::Pending);
        assert_eq!(store.approvals("r1").unwrap().len(), 1);
        assert!(
            store
                .transition("r1", Status::Pending, Status::Approved, None, 13)
                .unwrap()
        );
        assert!(store.store_signature("r1", b"sig", "d", 14).unwrap());
        assert!(!store.store_signature("r1", b"other", "d", 15).unwrap());
        let row = store.get("r1").unwrap().unwrap();
        assert_eq!(row.status, Status::Signed);
        assert_eq!(row.envelope.as_deref(), Some(&b"sig"[..]));
        let log = store.audit_log().unwrap();
        let events: Vec<&str> = log.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["requested", "approved-by", "approved", "signed"]);
        assert_eq!(verify_audit(&log).unwrap().0, 4);
    }

    #[test]
    fn a_rejection_ends_the_request_and_expiry_ends_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        store.insert(&request("r1"), 10).unwrap();
        store.insert(&request("r2"), 10).unwrap();
        store
            .add_decision("r1", &approval("CN=bob", Decision::Reject), "m", b"e", 11)
            .unwrap();
        assert_eq!(store.get("r1").unwrap().unwrap().status, Status::Rejected);
        assert!(
            store
                .add_decision("r1", &approval("CN=al", Decision::Approve), "m", b"f", 12)
                .is_err()
        );
        assert_eq!(store.expire(100).unwrap(), ["r2"]);
        assert_eq!(store.get("r2").unwrap().unwrap().status, Status::Expired);
    }

    #[test]
    fn a_changed_removed_or_reordered_audit_entry_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        store.insert(&request("r1"), 10).unwrap();
        store.insert(&request("r2"), 10).unwrap();
        store.note("started", "", 12).unwrap();
        let log = store.audit_log().unwrap();
        assert!(verify_audit(&log).is_ok());
        let mut changed = log.clone();
        changed[1].actor = "CN=someone-else".into();
        assert!(
            verify_audit(&changed)
                .unwrap_err()
                .to_string()
                .contains("entry 2")
        );
        let mut removed = log.clone();
        removed.remove(1);
        assert!(verify_audit(&removed).is_err());
        let mut swapped = log;
        swapped.swap(0, 1);
        assert!(verify_audit(&swapped).is_err());
    }
}

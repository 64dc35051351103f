//! airlock's errors as gRPC statuses: a code from the error's kind, its
//! Display text as the message, and an `ErrorDetails` (kind, field,
//! reason, findings) in the status's details.

use airlock::check::{Finding, Severity};
use airlock::state::StateError;
use airlock::{Error, ErrorKind};
use airlock_client::proto;
use tonic::{Code, Status};

pub fn finding(f: &Finding) -> proto::Finding {
    proto::Finding {
        code: f.code.to_string(),
        severity: match f.severity {
            Severity::Deny => proto::Severity::Deny,
            Severity::Warn => proto::Severity::Warn,
        } as i32,
        subject: f.subject.clone(),
        message: f.message.clone(),
        acknowledged: f.acknowledged,
        help: f.help(),
    }
}

/// A status with details.
pub fn status(code: Code, message: impl Into<String>, mut details: proto::ErrorDetails) -> Status {
    // A status travels in HTTP/2 headers, which a client bounds (hyper's
    // at 16 KiB unless raised, as airlock-client raises it), and a
    // message may quote what the caller sent (a name, a key, a sandbox
    // reference of any length): cut, a status still arrives as one.
    details.reason = cut(details.reason);
    details.field = cut(details.field);
    let bytes = prost::Message::encode_to_vec(&details);
    Status::with_details(code, cut(message.into()), bytes.into())
}

/// `status` about a field of the message `part` of a streaming call's
/// request (`start`, `attach`): its field `cwd` is `start.cwd`, as the
/// call's own refusals name it (`start.args`), and the message that
/// begins with the field says so too.
pub fn within(part: &str, fields: &[&str], status: Status) -> Status {
    let Some(mut details) = airlock_client::error_details(&status) else {
        return status;
    };
    // Only a field of that message: a setup step's name (`exec nosuch`)
    // is no field of the request.
    let first = details.field.split(['.', '[']).next().unwrap_or("");
    if details.field.is_empty() || !fields.contains(&first) {
        return status;
    }
    let field = format!("{part}.{}", details.field);
    let message = match status
        .message()
        .strip_prefix(&format!("{}: ", details.field))
    {
        Some(rest) => format!("{field}: {rest}"),
        None => status.message().to_string(),
    };
    details.field = field;
    self::status(status.code(), message, details)
}

/// The most of a message or reason a status carries, in bytes.
const MAX_TEXT: usize = 2048;

/// `text`, cut at [`MAX_TEXT`] bytes (on a character's boundary), saying
/// how much was left out.
fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let left = text.len() - MAX_TEXT;
        let at = (0..=MAX_TEXT)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(at);
        text.push_str(&format!("… ({left} more bytes)"));
    }
    text
}

/// An error about one request field: "FIELD: REASON".
fn about_field(code: Code, kind: &str, field: &str, reason: String) -> Status {
    status(
        code,
        format!("{field}: {reason}"),
        proto::ErrorDetails {
            kind: kind.into(),
            field: field.into(),
            reason,
            findings: Vec::new(),
        },
    )
}

/// The state of a sandbox that has ended: one that took its directory
/// along as it ended (`remove_on_exit`) left its last state for a while.
/// One deleted, or removed longer ago, has no exit status left to give:
/// not found, by its name, rather than an internal error naming a file.
pub fn state_at_end(
    sb: &airlock::state::SandboxDir,
    name: &str,
) -> Result<airlock::state::State, Status> {
    match sb.state_or_end() {
        Ok(st) => Ok(st),
        Err(StateError::Removed(_)) => {
            let reason =
                format!("sandbox {name} ended and was removed (a delete): its exit status is gone");
            Err(status(
                Code::NotFound,
                reason.clone(),
                proto::ErrorDetails {
                    kind: "not-found".into(),
                    field: String::new(),
                    reason,
                    findings: Vec::new(),
                },
            ))
        }
        Err(e) => Err(from_state(e)),
    }
}

/// A request field that is wrong.
pub fn invalid(field: &str, reason: impl Into<String>) -> Status {
    about_field(Code::InvalidArgument, "invalid-input", field, reason.into())
}

/// A daemon limit the request would pass.
pub fn limit(field: &str, reason: impl Into<String>) -> Status {
    about_field(Code::ResourceExhausted, "limit", field, reason.into())
}

/// The caller may not do this; `field` is what of its request it may
/// not ask (empty where it may not call at all).
pub fn denied(field: &str, reason: impl Into<String>, findings: Vec<proto::Finding>) -> Status {
    let reason = reason.into();
    status(
        Code::PermissionDenied,
        reason.clone(),
        proto::ErrorDetails {
            kind: "permission".into(),
            field: field.into(),
            reason,
            findings,
        },
    )
}

pub fn from_state(e: StateError) -> Status {
    from_error(Error::State(e))
}

/// [`from_state`] for `peer`, naming its sandbox as it does.
pub fn from_state_for(peer: impl std::borrow::Borrow<crate::peer::Peer>, e: StateError) -> Status {
    from_error_for(peer, Error::State(e))
}

/// [`from_error`] for `peer`: the library names a sandbox as the state
/// root keeps it (`u1000-web`), a client knows it as `web`.
pub fn from_error_for(peer: impl std::borrow::Borrow<crate::peer::Peer>, e: Error) -> Status {
    let peer = peer.borrow();
    let shown = |name: String| crate::meta::name_for(peer, peer.uid, &name).to_string();
    from_error(match e {
        Error::State(StateError::WrongStatus { name, status, what }) => {
            Error::State(StateError::WrongStatus {
                name: shown(name),
                status,
                what,
            })
        }
        Error::State(StateError::Refused { name, why }) => Error::State(StateError::Refused {
            name: shown(name),
            why,
        }),
        Error::State(StateError::NotAttachable(name)) => {
            Error::State(StateError::NotAttachable(shown(name)))
        }
        // Two Creates of one name both pass the daemon's own check; the
        // state root's claim refuses the second by the stored name.
        Error::State(StateError::NameInUse(name)) => {
            Error::State(StateError::NameInUse(shown(name)))
        }
        Error::State(StateError::BadName(name)) => Error::State(StateError::BadName(shown(name))),
        Error::State(StateError::Removed(name)) => Error::State(StateError::Removed(shown(name))),
        e => e,
    })
}

pub fn from_error(e: Error) -> Status {
    let (code, kind) = match e.kind() {
        ErrorKind::InvalidInput => (Code::InvalidArgument, "invalid-input"),
        ErrorKind::Refused => (Code::FailedPrecondition, "refused"),
        ErrorKind::NotFound => (Code::NotFound, "not-found"),
        ErrorKind::Conflict => match &e {
            Error::State(StateError::NameInUse(_)) => (Code::AlreadyExists, "conflict"),
            Error::State(StateError::Ambiguous(_)) => (Code::InvalidArgument, "invalid-input"),
            _ => (Code::FailedPrecondition, "conflict"),
        },
        ErrorKind::Host => (Code::FailedPrecondition, "host"),
        ErrorKind::ProgramNotFound => (Code::InvalidArgument, "program-not-found"),
        ErrorKind::ProgramNotExecutable => (Code::InvalidArgument, "program-not-executable"),
        ErrorKind::Internal => (Code::Internal, "internal"),
    };
    let (field, reason, findings) = match &e {
        Error::Spec(s) => (s.field.clone(), s.reason.clone(), Vec::new()),
        Error::Setup(s) => (s.step.clone(), s.reason.clone(), Vec::new()),
        Error::Refused(fs) => (
            fs.iter()
                .find(|f| f.refuses())
                .map(|f| f.subject.clone())
                .unwrap_or_default(),
            e.to_string(),
            fs.iter().map(finding).collect(),
        ),
        _ => (String::new(), e.to_string(), Vec::new()),
    };
    status(
        code,
        e.to_string(),
        proto::ErrorDetails {
            kind: kind.into(),
            field,
            reason,
            findings,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_names_only_the_fields_of_the_message() {
        let fields = &["sandbox", "cwd", "env"];
        let s = within("start", fields, invalid("env.A=B", "bad"));
        let d = airlock_client::error_details(&s).unwrap();
        assert_eq!(
            (d.field.as_str(), s.message()),
            ("start.env.A=B", "start.env.A=B: bad")
        );
        // A setup step's name is no field of the request.
        let step = from_error(airlock::Error::Setup(airlock::report::SetupError::new(
            "exec nosuch",
            "not found",
        )));
        let s = within("start", fields, step.clone());
        assert_eq!(s.message(), step.message());
        let d = airlock_client::error_details(&s).unwrap();
        assert_eq!(d.field, "exec nosuch");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let cut_text = cut("é".repeat(2000));
        assert!(cut_text.starts_with(&"é".repeat(1024)), "{cut_text}");
        assert!(cut_text.ends_with("… (1952 more bytes)"), "{cut_text}");
        assert_eq!(cut("short".into()), "short");
    }

    #[test]
    fn a_spec_error_names_its_field_in_the_details() {
        let s = from_error(airlock::spec::SpecError::new("process.args", "empty").into());
        assert_eq!(s.code(), Code::InvalidArgument);
        let d = airlock_client::error_details(&s).unwrap();
        assert_eq!(
            (d.kind.as_str(), d.field.as_str()),
            ("invalid-input", "process.args")
        );
        assert_eq!(d.reason, "empty");
    }

    #[test]
    fn a_clients_sandbox_is_named_as_the_client_names_it() {
        let peer = crate::peer::Peer {
            uid: 1000,
            gid: 1000,
            pid: 1,
            groups: Vec::new(),
        };
        for e in [
            StateError::NameInUse("u1000-web".into()),
            StateError::BadName("u1000-web".into()),
            StateError::Removed("u1000-web".into()),
            StateError::NotAttachable("u1000-web".into()),
        ] {
            let s = from_state_for(&peer, e);
            assert!(
                s.message().contains("web") && !s.message().contains("u1000-"),
                "{s:?}"
            );
        }
        let s = from_state_for(&peer, StateError::NameInUse("u1000-web".into()));
        assert_eq!(s.code(), Code::AlreadyExists);
        // Root sees the names as they are kept.
        let root = crate::peer::Peer { uid: 0, ..peer };
        let s = from_state_for(&root, StateError::NameInUse("u1000-web".into()));
        assert!(s.message().contains("u1000-web"), "{s:?}");
    }

    #[test]
    fn a_missing_sandbox_is_not_found() {
        let s = from_state(StateError::NotFound("x".into()));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(airlock_client::error_details(&s).unwrap().kind, "not-found");
    }
}

//! The typed errors of weir-admin's library. Every message is one line an operator can act on:
//! Kafka errors are named as Kafka names them (`TOPIC_ALREADY_EXISTS`), never a debug dump.

use kafka_protocol::ResponseError;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No TCP connection could be made to a broker.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// An established connection failed (reset, closed, or a read timed out).
    #[error("connection to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A request could not be encoded, or a response made no sense.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The broker refused an operation with a Kafka error code.
    #[error("{context}: {}{}", KafkaName(*error), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        context: String,
        error: ResponseError,
        message: Option<String>,
    },
    /// The broker does not speak a version of an API this tool can use.
    #[error("{0}")]
    Unsupported(String),
    /// The command line asked for something impossible, caught before (or instead of) asking the
    /// broker, e.g. shrinking a topic or an unknown topic.
    #[error("{0}")]
    Invalid(String),
    /// A bounded wait ran out.
    #[error("{0}")]
    Timeout(String),
}

pub type Result<T, E = AdminError> = std::result::Result<T, E>;

impl AdminError {
    pub fn protocol(e: impl fmt::Display) -> Self {
        AdminError::Protocol(e.to_string())
    }

    /// The Kafka error this is, if the broker sent one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            AdminError::Kafka { error, .. } => Some(*error),
            _ => None,
        }
    }
}

/// `Err(Kafka)` for a non-zero error code, with the broker's message when it sent one.
pub fn check(code: i16, message: Option<&str>, context: impl FnOnce() -> String) -> Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(AdminError::Kafka {
            context: context(),
            error,
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
        }),
    }
}

/// The entry of a response that answers for `name` (a topic, a group): brokers answer each item
/// of a request separately, and one missing is a broken response, not a Kafka error.
pub fn answer_for<T>(
    items: impl IntoIterator<Item = T>,
    api: &str,
    name: &str,
    is: impl Fn(&T) -> bool,
) -> Result<T> {
    items
        .into_iter()
        .find(|i| is(i))
        .ok_or_else(|| AdminError::Protocol(format!("{api} answer lacks {name}")))
}

/// A Kafka error as Kafka's own tools print it: `UNKNOWN_TOPIC_OR_PARTITION`, from the crate's
/// `UnknownTopicOrPartition`; unknown codes keep their number.
pub struct KafkaName(pub ResponseError);

impl fmt::Display for KafkaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ResponseError::Unknown(code) = self.0 {
            return write!(f, "UNKNOWN_ERROR_CODE_{code}");
        }
        let camel = self.0.to_string();
        let mut out = String::with_capacity(camel.len() + 8);
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_print_their_kafka_names() {
        assert_eq!(
            KafkaName(ResponseError::UnknownTopicOrPartition).to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            KafkaName(ResponseError::InvalidTopicException).to_string(),
            "INVALID_TOPIC_EXCEPTION"
        );
        assert_eq!(
            KafkaName(ResponseError::Unknown(999)).to_string(),
            "UNKNOWN_ERROR_CODE_999"
        );
        let e = check(36, Some("Topic 't' already exists."), || {
            "create topic t".into()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "create topic t: TOPIC_ALREADY_EXISTS: Topic 't' already exists."
        );
        assert!(check(0, None, || unreachable!()).is_ok());
        let e = check(3, Some(""), || "describe t".into()).unwrap_err();
        assert_eq!(e.to_string(), "describe t: UNKNOWN_TOPIC_OR_PARTITION");
    }
}

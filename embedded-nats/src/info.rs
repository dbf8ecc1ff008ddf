//! The INFO line sent to each client on accept, and the CONNECT options it answers with.

use serde::{Deserialize, Serialize};

/// Version advertised in INFO (clients compare it to enable features).
pub const SERVER_VERSION: &str = "2.10.0";

/// Fields of the INFO line.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerInfo<'a> {
    pub server_id: &'a str,
    pub server_name: &'a str,
    pub version: &'a str,
    pub proto: i8,
    pub go: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub headers: bool,
    pub max_payload: usize,
    pub client_id: u64,
    pub client_ip: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
}

impl ServerInfo<'_> {
    /// `INFO <json>\r\n`.
    pub(crate) fn to_line(&self) -> Vec<u8> {
        let mut out = b"INFO ".to_vec();
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_writer(&mut out, self).unwrap_or_default();
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Fields of a client's CONNECT we use; others are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ConnectInfo {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: Option<bool>,
    pub headers: bool,
    pub no_responders: bool,
    pub protocol: Option<i64>,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_json_line() {
        let info = ServerInfo {
            server_id: "ID",
            server_name: "n",
            version: SERVER_VERSION,
            proto: 1,
            go: "go1.21",
            host: "127.0.0.1",
            port: 4222,
            headers: true,
            max_payload: 1024,
            client_id: 7,
            client_ip: "127.0.0.1",
            auth_required: false,
            tls_required: false,
            tls_verify: false,
        };
        let line = info.to_line();
        assert!(line.starts_with(b"INFO {") && line.ends_with(b"}\r\n"));
        let v: serde_json::Value = serde_json::from_slice(&line[5..line.len() - 2]).unwrap();
        assert_eq!(v["max_payload"], 1024);
        assert_eq!(v["headers"], true);
        assert!(v.get("auth_required").is_none());
        assert!(v.get("tls_required").is_none() && v.get("tls_verify").is_none());
        let tls = ServerInfo {
            tls_required: true,
            tls_verify: true,
            ..info
        };
        let line = tls.to_line();
        let v: serde_json::Value = serde_json::from_slice(&line[5..line.len() - 2]).unwrap();
        assert_eq!(
            (&v["tls_required"], &v["tls_verify"]),
            (&true.into(), &true.into())
        );
    }

    #[test]
    fn connect_defaults_and_unknown_fields() {
        let c: ConnectInfo =
            serde_json::from_str(r#"{"verbose":true,"lang":"go","tls_required":false}"#).unwrap();
        assert!(c.verbose && !c.pedantic && c.echo.is_none());
        assert_eq!(c.lang.as_deref(), Some("go"));
        assert!(serde_json::from_str::<ConnectInfo>(r#"{"verbose":"x"}"#).is_err());
    }
}

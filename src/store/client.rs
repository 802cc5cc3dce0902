//! One Redis connection with a deadline on every call: connecting (name resolution runs
//! first, under the system resolver's own timeouts; then TCP connect, `AUTH` and `SELECT`
//! within [`CONNECT_TIMEOUT`]) and every command (write and read within [`IO_TIMEOUT`]).
//! Errors are sentences with the URL's credentials scrubbed out.
//!
//! Not for deciding when to call (`super::mirror`) or what keys mean (`super`). A build
//! without the `redis` feature has no connection: [`Conn::open`] says so (a config naming
//! a store is refused before it gets here).

use crate::config::Secret;
use std::time::Duration;

/// The longest a connection (TCP, `AUTH`, `SELECT`) may take.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest one command's write, and then its answer, may take.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// An open connection.
#[cfg(feature = "redis")]
pub(crate) struct Conn {
    inner: redis::Connection,
    url: Secret,
}

/// No connection can exist in a build without the `redis` feature.
#[cfg(not(feature = "redis"))]
pub(crate) struct Conn(std::convert::Infallible);

#[cfg(feature = "redis")]
impl Conn {
    /// Connects to `url` within [`CONNECT_TIMEOUT`].
    pub(crate) fn open(url: &Secret) -> Result<Conn, String> {
        let fail = |e: redis::RedisError| scrub(&format!("cannot connect to Redis: {e}"), url);
        let client = redis::Client::open(url.expose()).map_err(fail)?;
        let inner = client.get_connection_with_timeout(CONNECT_TIMEOUT).map_err(fail)?;
        inner.set_read_timeout(Some(IO_TIMEOUT)).map_err(fail)?;
        inner.set_write_timeout(Some(IO_TIMEOUT)).map_err(fail)?;
        Ok(Conn { inner, url: url.clone() })
    }

    fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, String> {
        cmd.query(&mut self.inner)
            .map_err(|e| scrub(&format!("a Redis command failed: {e}"), &self.url))
    }

    /// `GET key`.
    pub(crate) fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.query(redis::cmd("GET").arg(key))
    }

    /// `STRLEN key` (0 when missing).
    pub(crate) fn strlen(&mut self, key: &str) -> Result<u64, String> {
        self.query(redis::cmd("STRLEN").arg(key))
    }

    /// `EVAL script keys… args…`, answered by a list of strings.
    pub(crate) fn eval(
        &mut self,
        script: &str,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Vec<String>, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len()).arg(keys);
        for a in args {
            cmd.arg(*a);
        }
        self.query(&cmd)
    }

    /// `EVAL script keys… args…`, answered by a list of byte strings.
    pub(crate) fn eval_bytes(
        &mut self,
        script: &str,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len()).arg(keys);
        for a in args {
            cmd.arg(*a);
        }
        self.query(&cmd)
    }

    /// `HSETNX key field value`: true when the field was new.
    pub(crate) fn hsetnx(&mut self, key: &str, field: &str, value: &[u8]) -> Result<bool, String> {
        self.query(redis::cmd("HSETNX").arg(key).arg(field).arg(value))
    }

    /// `HDEL key field…`: how many fields were removed.
    pub(crate) fn hdel(&mut self, key: &str, fields: &[&str]) -> Result<usize, String> {
        if fields.is_empty() {
            return Ok(0);
        }
        self.query(redis::cmd("HDEL").arg(key).arg(fields))
    }
}

#[cfg(not(feature = "redis"))]
impl Conn {
    /// Always an error: this build has no Redis client.
    pub(crate) fn open(_url: &Secret) -> Result<Conn, String> {
        Err(crate::config::NO_REDIS_SUPPORT.to_owned())
    }

    pub(crate) fn get(&mut self, _key: &str) -> Result<Option<Vec<u8>>, String> {
        match self.0 {}
    }

    pub(crate) fn strlen(&mut self, _key: &str) -> Result<u64, String> {
        match self.0 {}
    }

    pub(crate) fn eval(
        &mut self,
        _s: &str,
        _k: &[&str],
        _a: &[&[u8]],
    ) -> Result<Vec<String>, String> {
        match self.0 {}
    }

    pub(crate) fn eval_bytes(
        &mut self,
        _s: &str,
        _k: &[&str],
        _a: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, String> {
        match self.0 {}
    }

    pub(crate) fn hsetnx(&mut self, _k: &str, _f: &str, _v: &[u8]) -> Result<bool, String> {
        match self.0 {}
    }

    pub(crate) fn hdel(&mut self, _key: &str, _fields: &[&str]) -> Result<usize, String> {
        match self.0 {}
    }
}

/// `message` with every credential of `url` (its user info, user and password) replaced by
/// `<redacted>`.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn scrub(message: &str, url: &Secret) -> String {
    let url = url.expose();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else { return message.to_owned() };
    let mut out = message.to_owned();
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    for secret in [userinfo, password, user] {
        if !secret.is_empty() {
            out = out.replace(secret, crate::config::REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_from_messages() {
        let url = Secret::new("redis://agent:hunter2@cache:6379/0");
        let m = scrub("auth for agent:hunter2 failed (hunter2)", &url);
        assert!(!m.contains("hunter2") && !m.contains("agent"), "{m}");
        let plain = Secret::new("redis://cache/0");
        assert_eq!(scrub("refused", &plain), "refused");
    }
}

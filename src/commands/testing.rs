//! In-process command tests (as Dragonfly's BaseFamilyTest): a server without sockets or
//! threads and a client, running commands through the real pipeline and returning the RESP
//! bytes of their replies. Families test their commands with it without spawning the binary,
//! and benches/dispatch.rs times the pipeline on it.

use bytes::Bytes;
use std::sync::Arc;

use super::pipeline::{self, Caller};
use crate::protocol::{Proto, ReplySink};
use crate::server::Server;
use crate::session::{Client, ClientHandle};

/// One server and one client of it.
pub struct Harness {
    pub server: Arc<Server>,
    pub client: Client,
}

impl Harness {
    pub fn new() -> Self {
        let server = Server::new(crate::config::Config::defaults(), None);
        let handle = ClientHandle::new(1, "127.0.0.1:40000".into(), "127.0.0.1:6379".into(), -1);
        Harness { server, client: Client::new(handle, true) }
    }

    /// Run a command as `caller` and return its reply (RESP bytes, lossily as text).
    pub fn run_as(&mut self, caller: Caller, args: &[&str]) -> String {
        let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let mut reply = ReplySink::new(self.client.proto);
        pipeline::execute_as(&self.server, &mut self.client, caller, &argv, &mut reply);
        String::from_utf8_lossy(&reply.buf).into_owned()
    }

    /// Run a command as a client connection would.
    pub fn run(&mut self, args: &[&str]) -> String {
        self.run_as(Caller::Client, args)
    }

    /// Switch the client to RESP3.
    pub fn resp3(&mut self) {
        self.client.proto = Proto::Resp3;
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

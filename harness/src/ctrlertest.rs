//! The lab 4A tester (shardctrler's config.go) over real processes: controller servers are
//! `raft-node run --service shardctrler` processes, clerks are [`Clerk`]s on netproxy's clerk
//! endpoints. The lab's `MakeClerk` gets the servers shuffled; these clerks keep them in node-id
//! order (a node's leader hint names a node id) and start at a random one instead.
//!
//! Only what the two 4A tests use: `make_config(3, reliable)`, `makeClient(All())`,
//! `ShutdownServer`, `StartServer` (isolated until `ConnectAll`), `Leader` and the 120 s check
//! of `cleanup`. The lab's Clerk retries for ever; so do these, until the test fails.

use crate::clerk::Clerk;
use crate::cluster::{Cluster, NodeOptions};
use crate::liveness::Liveness;
use crate::proxy::Proxy;
use crate::timing::{self, NodeTimers};
use raft_node::kv::Op;
use raft_node::runtime::ServiceKind;
use raft_node::shardctrler::config::{Config, Gid};
use raft_node::wire::ClusterKey;
use rand::Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct CtrlerTester {
    n: usize,
    cluster: Arc<Mutex<Cluster>>,
    liveness: Liveness,
    proxy: Proxy,
    key: ClusterKey,
    clerk_endpoints: Vec<SocketAddr>,
    faces: Vec<SocketAddr>,
    created: Instant,
    /// Set when the tester drops: clerks still retrying give up.
    cancelled: Arc<AtomicBool>,
}

/// A controller clerk (the lab's shardctrler `Clerk`): every call retries until it succeeds.
pub struct CtrlerClerk {
    clerk: Clerk,
}

impl CtrlerClerk {
    pub fn new(clerk: Clerk) -> CtrlerClerk {
        CtrlerClerk { clerk }
    }

    pub fn join(&mut self, servers: BTreeMap<Gid, Vec<String>>) {
        self.change(Op::Join { servers });
    }

    pub fn leave(&mut self, gids: &[Gid]) {
        self.change(Op::Leave {
            gids: gids.to_vec(),
        });
    }

    pub fn move_(&mut self, shard: usize, gid: Gid) {
        self.change(Op::Move { shard, gid });
    }

    /// The lab's Query(num): `-1` (here `None`) for the latest.
    pub fn query(&mut self, num: Option<u64>) -> Config {
        self.clerk
            .query(num, None)
            .unwrap_or_else(|e| panic!("shardctrler Query({num:?}): {e}"))
    }

    fn change(&mut self, op: Op) {
        let shown = format!("{op:?}");
        if let Err(e) = self.clerk.call(op, None) {
            panic!("shardctrler {shown}: {e}");
        }
    }
}

impl CtrlerTester {
    /// config.go make_config(n, unreliable): n controllers, all connected; the network
    /// reliable or not, set last.
    pub fn new(n: usize, unreliable: bool) -> CtrlerTester {
        let name = crate::tester::test_name();
        let options = NodeOptions {
            timers: NodeTimers::scaled(),
            service: ServiceKind::ShardCtrler,
            ..NodeOptions::lab()
        };
        let cluster = Cluster::launch_with(&name, n, options)
            .unwrap_or_else(|e| panic!("cannot start the controllers: {e}"));
        if let Err(e) = cluster.log().record_panics() {
            eprintln!("cannot record failures in the run's log: {e}");
        }
        let proxy = cluster.proxy();
        proxy.set_unreliable(unreliable);
        let layout = cluster.layout().clone();
        let key = cluster.key();
        let cluster = Arc::new(Mutex::new(cluster));
        CtrlerTester {
            n,
            liveness: Liveness::new(Arc::clone(&cluster)),
            cluster,
            proxy,
            key,
            clerk_endpoints: layout.clerks,
            faces: layout.faces,
            created: Instant::now(),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// config.go makeClient(All()): a clerk reaching every server, starting at a random one.
    pub fn make_client(&self) -> CtrlerClerk {
        let (mut clerk, endpoint) =
            Clerk::at_free_endpoint(&self.clerk_endpoints, self.faces.clone(), self.key.clone())
                .unwrap_or_else(|e| panic!("cannot make a clerk: {e}"));
        clerk.set_first_server(rand::thread_rng().gen_range(0..self.n));
        clerk.cancel_with(Arc::clone(&self.cancelled));
        let all: Vec<usize> = (0..self.n).collect();
        self.proxy.connect_clerk(endpoint, &all);
        CtrlerClerk { clerk }
    }

    /// config.go ShutdownServer(i): cut off from the other servers, then SIGKILLed; its log
    /// stays on disk.
    pub fn shutdown_server(&self, i: usize) {
        self.proxy.disconnect(i);
        self.liveness.crash(i);
    }

    /// config.go StartServer(i): a fresh process on its data dir, isolated until the next
    /// [`CtrlerTester::connect_all`].
    pub fn start_server(&self, i: usize) {
        self.proxy.disconnect(i);
        self.liveness.restart(i);
    }

    /// config.go ConnectAll: every running server reaches every running server.
    pub fn connect_all(&self) {
        for i in (0..self.n).filter(|&i| self.liveness.incarnation(i).is_some()) {
            self.proxy.connect(i);
        }
    }

    /// config.go Leader: the first running server, in index order, that says it leads.
    pub fn leader(&self) -> Option<usize> {
        self.liveness.check();
        let cluster = self.cluster.lock().unwrap();
        (0..self.n).find(|&i| {
            self.liveness.incarnation(i).is_some()
                && cluster.client(i).get_state().is_ok_and(|s| s.is_leader)
        })
    }

    /// config.go cleanup's time check (and the servers' liveness): call at the test's end.
    pub fn cleanup(&self) {
        self.liveness.check();
        timing::check_test_time_limit(self.created);
    }
}

impl Drop for CtrlerTester {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.liveness.shut_down(&self.cluster);
    }
}

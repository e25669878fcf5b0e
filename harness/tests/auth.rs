//! Authenticated traffic over real processes: a stranger who knows the cluster's addresses and
//! id but not its secret sends well-formed datagrams and opens control connections. Nothing it
//! sends changes a node's state; its datagrams are counted (`unauthenticated`); its control
//! connections get one clear error; the cluster goes on electing and committing.

use harness::clerk::Clerk;
use harness::cluster::{Cluster, NodeOptions};
use harness::timing::NodeTimers;
use raft_auth::Secret;
use raft_node::control::{self, NodeState, Request};
use raft_node::core::{Message, MessageBody};
use raft_node::kv::{ClerkRequest, Op};
use raft_node::runtime::ServiceKind;
use raft_node::wire::{self, ClusterKey, Payload};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(10);

/// The cluster's id with a secret that is not the cluster's.
fn stranger(cluster: &Cluster) -> ClusterKey {
    ClusterKey {
        id: cluster.key().id,
        secret: Secret::from_bytes(&[0xee; 32]),
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn states(cluster: &Cluster) -> Vec<NodeState> {
    (0..cluster.len())
        .map(|i| cluster.client(i).get_state().unwrap())
        .collect()
}

fn leader(cluster: &Cluster) -> usize {
    let mut leader = None;
    wait_for("a leader", || {
        leader = states(cluster).iter().position(|s| s.is_leader);
        leader.is_some()
    });
    leader.unwrap()
}

/// The datagram with its MAC cut out: the body right after the cluster id.
fn without_mac(datagram: &[u8]) -> Vec<u8> {
    [&datagram[..9], &datagram[wire::BODY..]].concat()
}

#[test]
fn forged_datagrams_and_control_clients_change_nothing() {
    let cluster = Cluster::launch("auth-forged", 3, NodeTimers::scaled()).unwrap();
    let leader = leader(&cluster);
    let before = states(&cluster);

    // Votes in a far term, and entries from a "leader" of that term: each would depose the
    // leader or overwrite a log if it were admitted. Straight to every node's own socket, as a
    // stranger on the network would, and through the proxy from an address it does not know.
    let layout = cluster.layout();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = vec![0u64; cluster.len()];
    for (to, sent) in sent.iter_mut().enumerate() {
        let from = (to + 1) % cluster.len();
        let bodies = [
            MessageBody::RequestVote {
                last_log_index: 1_000,
                last_log_term: 1_000,
            },
            MessageBody::AppendEntries {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: Vec::new(),
                leader_commit: 0,
                read_round: 0,
                flow_epoch: 0,
                wants_ack: true,
            },
        ];
        for body in bodies {
            let msg = Message {
                from: from as u32,
                to: to as u32,
                term: 1_000_000,
                body,
                via: None,
                hears: Default::default(),
            };
            let forged = wire::encode(&stranger(&cluster), &msg);
            let stripped = without_mac(&wire::encode(&cluster.key(), &msg));
            for datagram in [forged, stripped] {
                socket.send_to(&datagram, layout.nodes[to]).unwrap();
                socket.send_to(&datagram, layout.faces[to]).unwrap();
                *sent += 1;
            }
        }
    }
    wait_for("every forged datagram counted", || {
        let now = states(&cluster);
        (0..cluster.len()).all(|i| now[i].unauthenticated == sent[i])
    });

    // A control client without the secret: one clear error, then the close; one that skips
    // the handshake: the close, its request unserved.
    let addr = cluster.control_addr(leader);
    let mut wrong = TcpStream::connect(addr).unwrap();
    wrong.set_read_timeout(Some(PATIENCE)).unwrap();
    let err = control::authenticate(&mut wrong, &Secret::from_bytes(&[1; 32])).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(err.to_string(), raft_auth::WRONG_SECRET);
    let _ = control::write_frame(&mut wrong, &Request::Start { command: vec![1] });
    assert_eq!(wrong.read(&mut [0; 64]).unwrap_or(0), 0, "closed");

    let mut rude = TcpStream::connect(addr).unwrap();
    rude.set_read_timeout(Some(PATIENCE)).unwrap();
    control::write_frame(&mut rude, &Request::Start { command: vec![2] }).unwrap();
    let mut got = Vec::new();
    let _ = rude.read_to_end(&mut got);
    let (challenge, used) = control::decode_frame::<control::Challenge>(&got)
        .unwrap()
        .expect("the challenge");
    assert_eq!(challenge.nonce.len(), raft_auth::NONCE_LEN);
    assert_eq!(used, got.len(), "the request got an answer");

    // netproxy's control socket refuses the stranger too, and its network stays as it was.
    let proxy = netproxy::Client::new(cluster.proxy_control(), Secret::from_bytes(&[1; 32]));
    match proxy.disconnect(leader) {
        Err(netproxy::ClientError::Rejected(message)) => {
            assert_eq!(message, raft_auth::WRONG_SECRET)
        }
        other => panic!("a stranger's disconnect: {other:?}"),
    }

    // Nothing moved: no node took the forged term, no log changed (an election of its own,
    // which a loaded machine may bring, adds no entry: these nodes host no service).
    let after = states(&cluster);
    for (b, a) in before.iter().zip(&after) {
        assert!(a.term < 1_000_000, "node {} took the forged term", a.id);
        assert_eq!(
            (a.last_log_index, a.commit_index),
            (b.last_log_index, b.commit_index),
            "node {}",
            a.id
        );
    }

    // And the cluster still commits.
    let leader = self::leader(&cluster);
    let (index, _) = cluster
        .client(leader)
        .start(b"after the strangers")
        .unwrap()
        .expect("still the leader");
    wait_for("the command committed everywhere", || {
        states(&cluster).iter().all(|s| s.commit_index >= index)
    });
}

/// A clerk's Put sealed with another secret, from one of the proxy's own clerk endpoints: the
/// nodes count it and apply nothing; the real clerks go on.
#[test]
fn a_forged_clerk_request_is_not_applied() {
    let options = NodeOptions {
        service: ServiceKind::Kv,
        ..NodeOptions::lab()
    };
    let cluster = Cluster::launch_with("auth-clerk", 3, options).unwrap();
    let layout = cluster.layout().clone();
    let (mut clerk, k) =
        Clerk::at_free_endpoint(&layout.clerks, layout.faces.clone(), cluster.key()).unwrap();
    clerk.put("k", "real");
    let leader = leader(&cluster);

    // Another endpoint of the proxy, so the forgery passes it like any clerk's datagram.
    let forger_at: SocketAddr = layout.clerks[(k + 1) % layout.clerks.len()];
    let forger = UdpSocket::bind(forger_at).unwrap();
    let request = Payload::ClerkRequest(ClerkRequest {
        clerk: 99,
        seq: 1,
        op: Op::Put {
            key: "k".into(),
            value: "forged".into(),
        },
    });
    let forged = wire::encode_payload(&stranger(&cluster), &request);
    for _ in 0..5 {
        forger.send_to(&forged, layout.faces[leader]).unwrap();
    }
    wait_for("the forged requests counted", || {
        cluster.client(leader).get_state().unwrap().unauthenticated == 5
    });
    assert_eq!(clerk.get("k"), "real");
    clerk.append("k", "!");
    assert_eq!(clerk.get("k"), "real!");
}

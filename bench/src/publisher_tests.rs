#![allow(clippy::unwrap_used)]
use std::collections::HashMap;

use bytes::Buf;
use tokio::net::TcpListener;

use super::*;

/// Every message of a plan is sent by exactly one publisher, each publisher's
/// messages on a channel are numbered 0, 1, 2 … in the order it sends them,
/// and their counts are what subscribers expect.
#[test]
fn parts_split_the_messages() {
    for (messages, n_ch, k) in [(14, 3, 2), (10, 1, 1), (7, 1, 3), (300, 100, 2), (5, 4, 4)] {
        let mut seen = vec![0u32; messages as usize];
        let mut next_seq: HashMap<(usize, u64), u64> = HashMap::new();
        for index in 0..k {
            let part = Part { index, of: k };
            let mut i = part.first(n_ch);
            while i < messages {
                seen[i as usize] += 1;
                let want = next_seq.entry((index, i % n_ch)).or_insert(0);
                assert_eq!(
                    part.seq(i, n_ch),
                    *want,
                    "{messages} {n_ch} {k}: message {i}"
                );
                *want += 1;
                i = part.next(i, n_ch);
            }
        }
        assert!(
            seen.iter().all(|n| *n == 1),
            "{messages} {n_ch} {k}: {seen:?}"
        );
        for ch in 0..n_ch as usize {
            let total: u64 = (0..k)
                .map(|p| messages_from(messages, ch, n_ch as usize, p, k))
                .sum();
            assert_eq!(total, messages_on_channel(messages, ch, n_ch as usize));
            for p in 0..k {
                let sent = next_seq.get(&(p, ch as u64)).copied().unwrap_or(0);
                assert_eq!(messages_from(messages, ch, n_ch as usize, p, k), sent);
            }
        }
    }
}

#[test]
fn flow_counts_expected_deliveries_per_channel() {
    let tally = Arc::new(Tally::new(0));
    let flow = Flow {
        tally: Arc::clone(&tally),
        per_channel: vec![3, 2],
        lag: 2,
    };
    // Messages alternate channels 0,1,0,1,...
    assert_eq!(flow.expected_after(0), 0);
    assert_eq!(flow.expected_after(1), 3);
    assert_eq!(flow.expected_after(2), 5);
    assert_eq!(flow.expected_after(3), 8);
    assert!(flow.may_send(1));
    assert!(!flow.may_send(2), "message 0 not yet delivered");
    tally.add_delivered(3);
    assert!(flow.may_send(2));
    assert!(!flow.may_send(3));
}

/// Removes one whole POST from the front of `buf`; `false`: not all there yet.
fn take_post(buf: &mut BytesMut) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head)) = req.parse(buf) else {
        return false;
    };
    let len: usize = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
        .unwrap();
    if buf.len() < head + len {
        return false;
    }
    buf.advance(head + len);
    true
}

/// An HTTP server for `posts` POSTs on one connection that answers each only
/// once `hold` requests are waiting; returns the most it ever saw waiting.
async fn http_server(posts: usize, hold: usize) -> (SocketAddr, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (mut buf, mut waiting, mut most, mut answered) = (BytesMut::new(), 0, 0, 0);
        while answered < posts {
            while take_post(&mut buf) {
                waiting += 1;
            }
            most = most.max(waiting);
            if waiting >= hold.min(posts - answered) {
                for _ in 0..waiting {
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
                answered += std::mem::take(&mut waiting);
                continue;
            }
            assert!(s.read_buf(&mut buf).await.unwrap() > 0, "publisher left");
        }
        most
    });
    (addr, server)
}

async fn post(addr: SocketAddr, messages: u64, inflight: usize) -> Result<(), PublishError> {
    let target = Target::Http {
        addr,
        host: addr.to_string(),
        path: "/pub/{channel}".into(),
    };
    let mut publisher = Publisher::connect(&target, PubMode::Call).await?;
    let plan = Plan {
        channels: vec![Some("c".into())],
        messages,
        size: 64,
        rate: None,
        inflight,
    };
    let run = publisher.run(&plan, Part { index: 0, of: 1 }, None);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| PublishError::Http("timed out".into()))?
}

/// `--pub-inflight 1` on HTTP: each POST waits for the reply to the last one.
#[tokio::test]
async fn http_posts_one_at_a_time() {
    let (addr, server) = http_server(5, 1).await;
    post(addr, 5, 1).await.unwrap();
    assert_eq!(server.await.unwrap(), 1, "never two POSTs outstanding");
}

/// The server above does see pipelining: it answers only once 3 are waiting.
#[tokio::test]
async fn http_posts_pipelined() {
    let (addr, server) = http_server(6, 3).await;
    post(addr, 6, 3).await.unwrap();
    assert_eq!(server.await.unwrap(), 3);
}

#[tokio::test]
async fn no_notifications_over_http() {
    let target = Target::Http {
        addr: "127.0.0.1:1".parse().unwrap(),
        host: "x".into(),
        path: "/".into(),
    };
    let r = Publisher::connect(&target, PubMode::Notify).await;
    assert!(matches!(r, Err(PublishError::NotifyOverHttp)));
}

//! The soak program for 30 seconds with a small load (50 clients, 2 stalled,
//! 50 publishes/s): every client's deliveries complete and in order, the
//! stalled ones cut off, fds flat. Loads two cores lightly.
#![allow(clippy::unwrap_used)]

#[path = "../examples/soak.rs"]
#[allow(dead_code)]
mod soak;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_30_seconds() {
    let report = soak::run(soak::Args {
        secs: 30,
        clients: 50,
        stalled: 2,
        channels: 5,
        rate: 50,
    })
    .await;
    assert_eq!(report.failures, 0, "a client missed or reordered messages");
    assert!(report.verified > 0);
    assert!(report.stalled_cut, "stalled clients were never cut off");
    assert!(report.fds_ok, "fds grew");
}
